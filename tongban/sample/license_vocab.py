"""The vocabulary of the synthetic business licences: how often each authority, enterprise type
and status occurs, the provinces' own words for them, and the words synthetic enterprise names
are made of (all synthetic; the industry sections are GB/T 4754's)."""

from __future__ import annotations

from tongban.sample.common import cumulative

AUTHORITY_TYPES = ("91", "92", "93")
AUTHORITY_CUM = cumulative((0.335, 0.64, 0.025))
ENTERPRISE_TYPES = ("llc", "joint_stock", "sole_proprietorship", "partnership", "branch")
ENTERPRISE_CUM = cumulative((0.70, 0.05, 0.07, 0.06, 0.12))
STATUSES = ("active", "cancelled", "revoked", "moved_out")
STATUS_CUM = cumulative((0.86, 0.08, 0.04, 0.02))

ENTITY_TYPE_ZH = {
    "llc": "有限责任公司", "joint_stock": "股份有限公司", "sole_proprietorship": "个人独资企业",
    "partnership": "合伙企业", "individual_business": "个体工商户", "farmer_cooperative": "农民专业合作社",
    "branch": "分公司",
}
ENTITY_TYPE_JS = {
    "llc": "1100", "joint_stock": "1200", "sole_proprietorship": "4000", "partnership": "4500",
    "individual_business": "9100", "farmer_cooperative": "9300", "branch": "2100",
}
STATUS_ZH = {"active": "存续", "revoked": "吊销", "cancelled": "注销", "moved_out": "迁出"}
STATUS_JS = {"active": "1", "revoked": "2", "cancelled": "3", "moved_out": "4"}

BRAND_CHARS = "华鑫恒泰盛达兴隆源丰瑞祥宏博创新智联汇通佳信德康安顺利宇辰星海天正和美嘉诚晟昊骏腾飞远航峰睿卓越锦程"
INDUSTRY_WORDS = {
    "A": ("农业科技", "生态农业", "农业发展"), "B": ("矿业", "矿产品"), "C": ("科技", "机械", "电子", "新材料", "实业"),
    "D": ("能源", "电力", "燃气"), "E": ("建设工程", "建筑工程", "装饰工程"), "F": ("贸易", "商贸", "供应链管理"),
    "G": ("物流", "运输", "仓储"), "H": ("餐饮管理", "酒店管理"), "I": ("信息技术", "网络科技", "软件"),
    "J": ("投资管理", "金融信息服务"), "K": ("置业", "房地产开发", "物业管理"),
    "L": ("企业管理咨询", "商务服务", "人力资源"), "M": ("检测技术", "工程设计", "技术服务"),
    "N": ("环保科技", "园林绿化", "水务"), "O": ("家政服务", "维修服务"), "P": ("教育科技", "培训"),
    "Q": ("健康管理", "医疗科技"), "R": ("文化传媒", "体育文化", "影视"), "S": ("社会服务",), "T": ("国际交流",),
}
SHOP_WORDS = {"F": ("便利店", "商行", "超市", "批发部", "水果店"), "H": ("小吃店", "餐馆", "面馆", "饭店"),
              "O": ("理发店", "维修部", "洗衣店", "家电维修部")}
SOLE_SUFFIXES = ("商行", "经营部", "工作室", "服务部")
COOP_WORDS = ("水稻种植", "果蔬", "茶叶", "畜禽养殖", "苗木", "农机服务", "水产养殖")
