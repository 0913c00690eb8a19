from tongban.common.alerts import alerts_path, read_alerts, record_alert


def test_alerts_append_and_read_newest_first(tmp_path):
    assert read_alerts(build_dir=tmp_path) == []
    record_alert(source="dag", message="first", dag_id="d", task_id="t", run_id="r1", build_dir=tmp_path)
    record_alert(source="dag", message="second", build_dir=tmp_path)
    with alerts_path(tmp_path).open("a", encoding="utf-8") as f:
        f.write('{"torn')  # a crash mid-write
    got = read_alerts(build_dir=tmp_path)
    assert [a["message"] for a in got] == ["second", "first"]
    assert got[1]["task_id"] == "t" and got[1]["run_id"] == "r1"
    assert read_alerts(limit=1, build_dir=tmp_path)[0]["message"] == "second"
