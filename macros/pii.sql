{#- PII masking in SQL: the same display forms as tongban.pii.mask (see that module).

    The body between the macro tags is plain DuckDB SQL; tongban.pii.sql_ddl() reads it for Python callers,
    dbt models call it through an on-run-start hook or a pre-hook. Keep it free of Jinja.
    NFKC is approximated: full-width ASCII and the Unicode spaces are mapped as NFKC maps them, every
    character Python's str.strip() removes is trimmed. Lengths count code points, as Python's len().
    The macro is self-contained (no helper macros): DuckDB binds a macro body at creation time in the
    search path of that moment, so helpers would break when it is called from another schema.
    The compound-surname list is tongban.pii.COMPOUND_SURNAMES (a unit test keeps them equal). -#}
{% macro tongban_pii_ddl() %}
create or replace macro tongban_mask(kind, value) as list_transform(
    [nullif(trim(
        translate(
            CAST(value AS VARCHAR),
            '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～' || chr(160) || chr(8192) || chr(8193) || chr(8194) || chr(8195) || chr(8196) || chr(8197) || chr(8198) || chr(8199) || chr(8200) || chr(8201) || chr(8202) || chr(8239) || chr(8287) || chr(12288),
            '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~' || '               '
        ),
        chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(28) || chr(29) || chr(30) || chr(31) || ' ' || chr(133) || chr(160) || chr(5760) || chr(8192) || chr(8193) || chr(8194) || chr(8195) || chr(8196) || chr(8197) || chr(8198) || chr(8199) || chr(8200) || chr(8201) || chr(8202) || chr(8232) || chr(8233) || chr(8239) || chr(8287) || chr(12288)
    ), '')],
    lambda s: case
        when s is null then null
        when kind = 'name' and length(s) = 1 then '*'
        when kind = 'name' and length(s) >= 3 and list_contains([
            '万俟', '司马', '上官', '欧阳', '夏侯', '诸葛', '闻人', '东方', '赫连', '皇甫', '尉迟', '公羊', '澹台', '公冶', '宗政', '濮阳',
            '淳于', '单于', '太叔', '申屠', '公孙', '仲孙', '轩辕', '令狐', '钟离', '宇文', '长孙', '慕容', '鲜于', '闾丘', '司徒', '司空',
            '亓官', '司寇', '子车', '颛孙', '端木', '巫马', '公西', '漆雕', '乐正', '壤驷', '公良', '拓跋', '夹谷', '宰父', '谷梁', '段干',
            '百里', '东郭', '南门', '呼延', '羊舌', '微生', '梁丘', '左丘', '东门', '西门', '南宫', '第五', '独孤', '完颜', '司馬', '歐陽',
            '諸葛', '尉遲', '公孫', '軒轅', '鍾離', '長孫', '鮮於', '閭丘', '東方', '東郭', '澹臺', '濮陽', '南宮', '獨孤', '顓孫', '樂正'
        ], left(s, 2))
            then left(s, 2) || repeat('*', length(s) - 2)
        when kind = 'name' then left(s, 1) || repeat('*', length(s) - 1)
        when kind = 'phone' then list_transform(
            [regexp_replace(s, '[^0-9]', '', 'g')],
            lambda d: case
                when regexp_full_match(d, '(0086|86)?1[0-9]{10}') then left(right(d, 11), 3) || '****' || right(d, 4)
                when regexp_full_match(d, '0[12][0-9]{8,9}') then left(d, 3) || '-' || repeat('*', length(d) - 7) || right(d, 4)
                when regexp_full_match(d, '0[3-9][0-9]{9,10}') then left(d, 4) || '-' || repeat('*', length(d) - 8) || right(d, 4)
                when length(d) > 4 then repeat('*', length(d) - 4) || right(d, 4)
                when length(d) > 0 then repeat('*', length(d))
                else repeat('*', length(s))
            end
        )[1]
        else list_transform(
            [case when kind = 'id_number'
                then translate(s, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')
                else s end],
            lambda t: case
                when length(t) >= 8 then left(t, 3) || repeat('*', length(t) - 7) || right(t, 4)
                when length(t) >= 4 then left(t, 1) || repeat('*', length(t) - 1)
                else repeat('*', length(t))
            end
        )[1]
    end
)[1];
{% endmacro %}
