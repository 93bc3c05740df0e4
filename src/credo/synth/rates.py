"""The city's rates as data: districts, ages, names, how often each record type happens, and the
shares of dirty rows. ``RATES`` is tuned so that the default policy (Beijing) gives a plausible grade
distribution; the scoring and governance benches read it too."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_POLICY = Path(__file__).parent.parent / "policies" / "beijing.yaml"
RECORD_COLUMNS = ("record_id", "type", "subject", "occurred_at", "resolves", "attributes")
POPULATION_COLUMNS = ("resident_id", "name", "district", "status", "status_date")
TELECOM_COLUMNS = ("phone", "resident_id", "valid_from", "valid_to")
CHUNK = 1_000_000
EPOCH = date(1970, 1, 1)

# (code, name, population in 10k, 2020 census): the 16 districts of Beijing.
DISTRICTS: tuple[tuple[str, str, float], ...] = (
    ("110101", "东城", 70.9), ("110102", "西城", 110.6), ("110105", "朝阳", 345.2),
    ("110106", "丰台", 201.9), ("110107", "石景山", 56.8), ("110108", "海淀", 313.3),
    ("110109", "门头沟", 39.3), ("110111", "房山", 131.3), ("110112", "通州", 184.0),
    ("110113", "顺义", 132.4), ("110114", "昌平", 226.9), ("110115", "大兴", 199.4),
    ("110116", "怀柔", 44.1), ("110117", "平谷", 45.7), ("110118", "密云", 52.8),
    ("110119", "延庆", 34.6),
)
# Relative weight of one year of age, by age band (adults only: 18-90).
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (18, 24, 1.0), (25, 34, 1.6), (35, 44, 1.45), (45, 54, 1.5), (55, 64, 1.35),
    (65, 74, 0.95), (75, 84, 0.5), (85, 90, 0.2),
)
SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun",
            "Hu", "Zhu", "Gao", "Lin", "He", "Guo", "Ma", "Luo", "Liang", "Song", "Zheng", "Xie",
            "Han", "Tang", "Feng", "Yu", "Dong", "Xiao")
GIVEN = ("Wei", "Fang", "Na", "Xiuying", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong",
         "Yan", "Jie", "Juan", "Tao", "Ming", "Chao", "Xiulan", "Xia", "Ping", "Gang", "Hui", "Hong",
         "Yuxuan", "Zihan", "Haoran", "Yichen", "Xinyi", "Jiayi", "Bo", "Lin", "Hao", "Kai", "Dan",
         "Rui", "Tingting", "Zhiqiang", "Guiying", "Shu")

# Expected records per resident per year, by type code. For a type that resolves others (its policy
# entry has ``resolves``) the value is instead the share of the resolvable records that get resolved.
RATES: dict[str, float] = {
    # court: about 2.5 % of residents are on the dishonest-debtor list at any time
    "court.judgment_default": 0.017,
    "court.judgment_fulfilled": 0.35,
    "court.enforcement_obstruction": 0.0008,
    "court.consumption_breach": 0.0008,
    "court.false_litigation": 0.0004,
    # tax
    "tax.arrears": 0.008,
    "tax.arrears_settled": 0.7,
    "tax.major_violation": 0.0004,
    "tax.major_violation_corrected": 0.3,
    "tax.filing_compliant": 0.03,
    # market regulator (residents who run a business)
    "market.under_table_fee": 0.002,
    "market.false_advertising": 0.0015,
    "market.counterfeit_goods": 0.0006,
    "market.food_safety_violation": 0.0006,
    "market.credit_repaired": 0.4,
    # traffic police: the biggest feed
    "traffic.red_light": 0.04,
    "traffic.speeding": 0.045,
    "traffic.illegal_parking": 0.04,
    "traffic.drink_driving": 0.002,
    "traffic.drunk_driving": 0.0008,
    "traffic.hit_and_run": 0.0001,
    "traffic.fine_overdue": 0.01,
    "traffic.fine_paid": 0.75,
    "traffic.zebra_crossing_no_yield": 0.02,
    # transit
    "transit.fare_evasion": 0.03,
    "transit.fare_repaid": 0.6,
    "transit.disorderly_conduct": 0.006,
    "transit.operation_disruption": 0.0004,
    # tourism
    "tourism.uncivil_behaviour": 0.003,
    "tourism.heritage_damage": 0.0003,
    "tourism.forced_shopping": 0.0004,
    # pro-social
    "blood.whole_blood_donation": 0.04,
    "blood.platelet_donation": 0.006,
    "blood.donor_award": 0.0008,
    "blood.stem_cell_donation": 0.0001,
    "volunteer.service": 0.25,
    "volunteer.star_volunteer": 0.002,
    "volunteer.emergency_relief": 0.01,
    "volunteer.civility_guide": 0.02,
    "civil.charity_donation": 0.03,
    "civil.good_samaritan": 0.0003,
    "civil.charity_fraud": 0.0002,
    # labour, housing, customs, environment, education
    "labour.salary_arrears": 0.001,
    "labour.arrears_paid": 0.6,
    "labour.model_worker": 0.0005,
    "labour.insurance_fraud": 0.0004,
    "housing.rent_default": 0.004,
    "housing.rent_settled": 0.6,
    "housing.illegal_sublet": 0.002,
    "housing.fund_fraud": 0.0004,
    "housing.subsidy_fraud": 0.0002,
    "customs.smuggling": 0.0003,
    "customs.undeclared_goods": 0.003,
    "environment.waste_sorting_violation": 0.025,
    "environment.open_burning": 0.002,
    "environment.tree_planting": 0.03,
    "education.exam_cheating": 0.001,
    "education.academic_fraud": 0.0002,
}
DEFAULT_RATE = 0.002
"""Records per resident per year for a type that ``RATES`` does not name."""
DEFAULT_RESOLVE_SHARE = 0.5
"""Share of resolvable records resolved, for a resolving type that ``RATES`` does not name."""
RESOLVE_DELAY: dict[str, int] = {
    "court": 120, "tax": 60, "market-regulator": 150, "traffic-police": 30, "transit": 7,
    "labour": 60, "housing": 45,
}
"""Mean days from a record to the record that resolves it, by agency (default 60)."""

FORMATS: dict[str, str] = {
    "traffic-police": "parquet", "transit": "parquet", "volunteer-registry": "parquet",
    "blood-centre": "jsonl", "civil-affairs": "jsonl",
}
"""Feed format by agency; every other feed (population and telecom too) is CSV."""
PHONE_SHARE: dict[str, float] = {"transit": 0.5}
"""Share of an agency's records keyed by the phone number held at ``occurred_at``."""
DATETIME_AGENCIES = frozenset({"traffic-police", "transit"})
"""Agencies whose ``occurred_at`` carries a time of day."""
MAX_AGE: dict[str, int] = {"blood-centre": 60}
"""Agencies whose records only happen below an age (blood donors are 18-60)."""
CIVIC_SHARE = 0.12
"""Share of residents who do most of the volunteering, donating and giving."""
RECYCLED_SHARE = 0.06
SECOND_PHONE_SHARE = 0.12

DIRTY_KINDS: tuple[str, ...] = (
    "bad_check_char", "bad_birth_date", "bad_id_length", "bad_phone", "unknown_resident",
    "unresolved_phone", "unknown_type", "foreign_type", "impossible_date", "future_date",
    "date_before_1900", "missing_resolves", "attributes_not_object", "attributes_too_big",
    "empty_record_id", "long_record_id", "conflicting_duplicate", "identical_duplicate",
)
"""Malformed record rows, one kind after another; every one must be rejected by ingest
(the identical duplicate is counted as a duplicate, not stored twice)."""
POPULATION_DIRTY = ("bad_check_char", "bad_birth_date", "bad_id_length", "impossible_date")
TELECOM_DIRTY = ("bad_phone", "bad_check_char", "bad_id_length", "impossible_date")

_PHONE_BASE = 13_000_000_000
_PHONE_SPAN = 6_000_000_000  # numbers 130..189 xxxx xxxx
_PHONE_MULT = 2_654_435_761  # coprime to the span: index -> number is a bijection
_PHONE_ADD = 1_234_567_891
_UNKNOWN_REGION = 310101  # Shanghai: a valid ID that is never a resident of this city

_ROADS = ("长安街", "二环路", "三环路", "四环路", "五环路", "京藏高速", "京承高速", "京港澳高速",
          "建国路", "学院路", "中关村大街", "朝阳北路", "西直门外大街", "南苑路")
_LINES = ("Line 1", "Line 2", "Line 4", "Line 5", "Line 6", "Line 8", "Line 10", "Line 13",
          "Line 14", "Line 15", "Batong", "Changping", "Daxing Airport Express")
_STATIONS = ("西直门", "国贸", "东直门", "海淀黄庄", "天通苑", "回龙观", "宋家庄", "北京南站",
             "望京", "六里桥", "苹果园", "四惠")
_SITES = ("故宫", "八达岭长城", "颐和园", "天坛", "圆明园", "慕田峪长城", "北海公园", "景山公园")
_BLOOD_SITES = ("西单献血屋", "王府井献血车", "中关村献血屋", "望京献血屋", "北京市红十字血液中心")
_ORGS = ("社区志愿服务队", "北京志愿者联合会", "蓝天救援队", "图书馆志愿者", "交通文明志愿者")
_PORTS = ("首都国际机场", "大兴国际机场", "北京西站", "北京丰台站")
_EXAMS = ("高考", "研究生考试", "公务员考试", "英语四六级", "职业资格考试")

# Attribute fields by agency: (key, kind, argument). Kinds: int (lo, hi), pick (choices),
# case (court enforcement case number), penalty (market-regulator penalty decision), plate.
_ATTRS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "court": (("case", "case", None), ("amount", "int", (1000, 500_000))),
    "tax": (("amount", "int", (500, 200_000)), ("office", "pick", tuple(d[1] for d in DISTRICTS))),
    "market-regulator": (("case", "penalty", None), ("fine", "int", (2000, 100_000))),
    "traffic-police": (("road", "pick", _ROADS), ("plate", "plate", None), ("fine", "int", (50, 2000))),
    "transit": (("line", "pick", _LINES), ("station", "pick", _STATIONS), ("fare", "int", (3, 10))),
    "tourism": (("site", "pick", _SITES),),
    "blood-centre": (("ml", "pick", ("200", "300", "400")), ("site", "pick", _BLOOD_SITES)),
    "volunteer-registry": (("hours", "int", (1, 8)), ("org", "pick", _ORGS)),
    "civil-affairs": (("amount", "int", (50, 20_000)),),
    "labour": (("amount", "int", (5000, 800_000)), ("workers", "int", (1, 60))),
    "housing": (("amount", "int", (1000, 60_000)),),
    "customs": (("port", "pick", _PORTS), ("value", "int", (1000, 300_000))),
    "environment": (("district", "pick", tuple(d[1] for d in DISTRICTS)), ("fine", "int", (50, 1000))),
    "education": (("exam", "pick", _EXAMS),),
}
_DEFAULT_ATTRS: tuple[tuple[str, str, Any], ...] = (("ref", "int", (100_000, 999_999)),)
_NUMERIC_PICKS = frozenset({"ml"})

