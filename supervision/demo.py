"""Demo data: the article's world, told as one story dated from today.

- Ruian's 2023 batch (29 projects, 25 to finish that year): finished in 2023, the four carried
  over in 2024, all accepted; its issues were filed, worked and closed then.
- This year's batch (``current_batch`` in ``fixtures/demo.json``) is under way now: issues of this
  week (urgent safety ones, overdue ones, every state), patrols, an extension waiting for the
  bureau, escalations (督办) and an appeal; one residents' vote (意愿征询) is open with live
  participation, another closed earlier this year and its result became the project's scope.

Reference data comes from ``fixtures/demo.json`` and is matched on natural keys, so loading twice
changes nothing. Issues are filed and worked through the workflow services under a simulated
clock, so every event is one the product would write, at the time it would have written it; the
overdue sweep and the reporters' reminders are played back at the times they would have run, so
a fresh ``make run`` (which runs the sweep at once) finds nothing left to do.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from accounts.models import User

from . import acceptance as acceptances
from . import letters, residents, services, surveys, warranty
from .models import (
    Acceptance,
    AcceptanceEvent,
    AcceptanceView,
    Ballot,
    Consultation,
    ConsultationItem,
    Department,
    ExtensionRequest,
    Issue,
    Letter,
    Neighbourhood,
    Notification,
    Patrol,
    Project,
    Region,
    ResponseTemplate,
    RoutingRule,
    ScopeItem,
    Subdistrict,
    Supervisor,
    Support,
    Survey,
    SurveyAnswer,
)

DEMO_FILE = Path(settings.BASE_DIR) / "fixtures" / "demo.json"

# The article's batch. This year's is the year its works started (see ``_current_year``).
OLD_BATCH = 2023

SCOPE_CHOICES = [
    ("building", "外立面整治及屋面防水", 120),
    ("building", "楼道粉刷及照明改造", 40),
    ("building", "加装电梯", 200),
    ("roads", "小区道路黑化及标线", 90),
    ("roads", "新增停车位及电动车充电桩", 60),
    ("pipes", "雨污分流改造", 150),
    ("pipes", "强弱电线缆上改下", 80),
    ("pipes", "供水管网更新", 70),
    ("landscape", "绿化补植与口袋公园", 50),
    ("care", "居家养老服务站", 45),
    ("governance", "智慧安防及门禁系统", 35),
    ("governance", "物业用房及党群服务点", 30),
]

# The 2023 batch's issues, all finished long ago: (supervisor no., category, urgency, title,
# description, location, history). Filed on the supervisor's own project while it was being
# built; each step is (name, days after filing, *extra). ``lapse``: the reporter never checked
# the fix, so the sweep reminded them and then closed it unrated (逾期未评价).
OLD_ISSUES = [
    (1, "safety", "urgent", "脚手架没有挂安全网",
     "东侧脚手架二层以上没有挂安全网，下面就是孩子上学走的路，风一吹有东西往下掉，很危险。",
     "东侧主楼",
     [("submit", 0), ("accept", 0.05), ("dispatch", 0.06), ("rectify", 0.3), ("verify", 0.4, "satisfied")]),
    (1, "quality", "normal", "外墙涂料起皮",
     "北面新刷的外墙涂料已经起皮，用手一碰就掉，怀疑基层没有处理好。",
     "北立面 5–8 层",
     [("submit", 0), ("accept", 0.2), ("dispatch", 0.3), ("rectify", 6), ("verify", 6.3, "satisfied")]),
    (2, "civilised", "normal", "渣土车不盖篷布",
     "早上 7 点左右渣土车进出小区不盖篷布，路面全是泥，灰尘很大，晾的衣服都脏了。",
     "南大门",
     [("submit", 0), ("accept", 0.1), ("rectify", 1.2), ("verify", 1.4, "satisfied")]),
    (3, "civilised", "normal", "晚上十点后还在切割钢管",
     "昨晚 10 点半还在切割钢管，噪音很大，楼里老人孩子都睡不着。",
     "3 幢北侧加工场",
     [("submit", 0), ("accept", 0.1), ("dispatch", 0.2), ("rectify", 1), ("verify", 1.3, "basically_satisfied")]),
    (4, "progress", "normal", "南门主路挖开两个星期没回填",
     "南门主路挖开已经两个星期了，一直没有回填，老人出门要绕很远，下雨天更难走。",
     "南门主路",
     [("submit", 0), ("accept", 0.3), ("dispatch", 0.35), ("escalate", 7),
      ("extend", 7.2, 7, "雨污管道接驳要等供水单位停水窗口，申请延期到本月下旬。"),
      ("grant", 8), ("rectify", 15), ("verify", 15.3, "satisfied")]),
    (5, "opinion", "normal", "希望多装几个电动车充电桩",
     "居民普遍反映电动车充电难，希望在 5 幢旁边的空地多装几个充电桩，方便大家，也防止飞线充电。",
     "5 幢旁空地",
     [("submit", 0), ("answer", 1), ("verify", 1.3, "satisfied")]),
    (6, "quality", "normal", "新铺沥青路面积水",
     "中心花园旁边新铺的沥青路一下雨就积水，估计坡度不对，排水口位置也偏高。",
     "中心花园东侧道路",
     [("submit", 0), ("accept", 0.3), ("dispatch", 0.35), ("rectify", 5), ("reopen", 5.3),
      ("rectify", 10), ("verify", 10.3, "basically_satisfied")]),
    (7, "safety", "urgent", "楼道里堆放水泥和钢管",
     "2 幢 1 单元楼道里堆了十几袋水泥和一捆钢管，把消防通道挡住了，晚上看不清容易绊倒。",
     "2 幢 1 单元楼道",
     [("submit", 0), ("accept", 0.05), ("rectify", 0.25), ("verify", 0.35, "satisfied")]),
    (8, "other", "normal", "施工公示牌信息不全",
     "小区门口的施工公示牌没有写施工单位的联系电话，也没有写工期，居民有事不知道找谁。",
     "小区正门",
     [("submit", 0), ("accept", 0.3), ("rectify", 1.2), ("verify", 1.3, "satisfied")]),
    (9, "safety", "normal", "施工电梯口没有防护门",
     "外墙施工的升降机出口没有防护门，小孩子会跑过去看。",
     "8 幢西侧",
     [("submit", 0), ("accept", 0.2), ("rectify", 1.1), ("verify", 1.3, "satisfied")]),
    (10, "quality", "normal", "雨污管道井盖松动",
     "新装的雨污分流井盖踩上去会晃，有响声，晚上车开过去哐哐响。",
     "7 幢与 8 幢之间",
     [("submit", 0), ("accept", 0.2), ("dispatch", 0.3), ("rectify", 4), ("lapse",)]),
    (11, "safety", "normal", "基坑边没有围挡",
     "化粪池改造的基坑边上只拉了一根绳子，没有硬质围挡，小孩子经常在旁边玩。",
     "1 幢西侧",
     [("submit", 0), ("accept", 0.1), ("rectify", 1), ("verify", 1.3, "satisfied")]),
    (12, "progress", "normal", "加装电梯迟迟没有开工",
     "说好 9 月开工的电梯加装到现在还没动静，腿脚不便的老人都在等，能不能告诉我们具体时间。",
     "6 幢 2 单元",
     [("submit", 0), ("accept", 1), ("answer", 2), ("verify", 2.3, "basically_satisfied")]),
    (13, "civilised", "normal", "工地扬尘没有洒水",
     "这几天风大，工地上的土堆没有覆盖也没有洒水，灰尘一直往楼里飘。",
     "小区西侧空地",
     [("submit", 0), ("accept", 0.1), ("dispatch", 0.2), ("rectify", 1), ("reopen", 1.3),
      ("rectify", 3), ("verify", 3.3, "satisfied")]),
    (14, "quality", "normal", "楼道新换的灯不亮",
     "3 幢楼道刚换的声控灯有一半不亮，晚上上下楼很不方便。",
     "3 幢各单元楼道",
     [("submit", 0), ("accept", 0.1), ("rectify", 1), ("reopen", 2), ("dispatch", 2.1),
      ("rectify", 4), ("verify", 4.3, "satisfied")]),
    (15, "other", "normal", "楼下路灯不亮",
     "4 幢楼下的路灯一直不亮。",
     "4 幢楼下",
     [("submit", 0), ("withdraw", 0.2, "物业今天已经修好了，撤回。")]),
    (16, "quality", "normal", "外墙涂料起皮（重复反映）",
     "北面外墙涂料起皮。",
     "北立面",
     [("submit", 0), ("reject", 0.3,
       "与北立面涂料起皮问题重复，已在原问题中一并整改，请关注原问题的进展。")]),
    (17, "opinion", "normal", "希望保留小区里的老桂花树",
     "听说绿化改造要移走中心花园那棵老桂花树，居民都舍不得，希望能保留下来。",
     "中心花园",
     [("submit", 0), ("accept", 0.1), ("dispatch", 1), ("rectify", 3), ("verify", 3.3, "satisfied")]),
    (18, "civilised", "normal", "施工人员在楼道抽烟",
     "有施工人员在楼道里抽烟，烟头乱扔，有火灾隐患。",
     "5 幢楼道",
     [("submit", 0), ("accept", 0.1), ("dispatch", 0.15), ("rectify", 0.8), ("verify", 1.1, "satisfied")]),
    (19, "opinion", "normal", "外立面颜色能不能征求意见",
     "居民想知道外立面颜色是怎么定的，能不能拿两三个方案出来征求一下大家的意见。",
     "全小区",
     [("submit", 0), ("answer", 0.5), ("verify", 0.8, "satisfied")]),
    (20, "civilised", "normal", "建筑垃圾堆在绿化带",
     "拆下来的旧窗户和砖头堆在绿化带里快一个星期了，没人清运。",
     "12 幢南侧绿化带",
     [("submit", 0), ("accept", 0.1), ("dispatch", 0.2), ("rectify", 2), ("verify", 2.3, "unsatisfied"),
      ("rectify", 3.2), ("verify", 3.4, "satisfied")]),
    (21, "quality", "normal", "屋面防水做完还是漏",
     "顶楼住户反映屋面防水刚做完，前天下雨卧室天花板还是渗水。",
     "5 幢 601 室",
     [("submit", 0), ("accept", 0.1), ("dispatch", 0.4), ("rectify", 4), ("reopen", 5),
      ("rectify", 10), ("verify", 10.3, "satisfied")]),
    (22, "quality", "normal", "新砌的花坛开裂",
     "中心花园新砌的花坛才一个月就裂了好几条缝。",
     "中心花园",
     [("submit", 0), ("accept", 0.1), ("dispatch", 0.5), ("rectify", 4), ("verify", 4.3, "satisfied")]),
    (23, "opinion", "normal", "希望增加老年人休息座椅",
     "口袋公园改造时能不能多放几张带靠背的座椅，老人走累了可以歇一歇。",
     "口袋公园",
     [("submit", 0), ("answer", 1), ("verify", 1.3, "basically_satisfied")]),
    (24, "quality", "normal", "单元门禁装好就坏",
     "新装的单元门禁刷卡经常没反应，老人进不了门。",
     "2 幢 1 单元",
     [("submit", 0), ("transfer", 0.2, "门禁属于智慧安防项目，由住建局统一协调。"),
      ("accept", 0.4), ("dispatch", 1), ("rectify", 5), ("verify", 5.3, "satisfied")]),
    (25, "progress", "normal", "雨污分流工程进度慢",
     "雨污分流这段已经停工十来天了，沟还开着，希望加快进度。",
     "小区东门",
     [("submit", 0), ("accept", 0.1), ("dispatch", 0.5), ("rectify", 6), ("verify", 6.3, "satisfied")]),
]  # fmt: skip

# This year's issues, on the batch now under way: (supervisor no., project, category, urgency,
# title, description, location, history); each step is (name, days ago, *extra).
CURRENT_ISSUES = [
    (1, "新街小区", "safety", "urgent", "吊篮作业下方没有设警戒区",
     "2 幢北面吊篮在刷外墙，下面没有拉警戒线也没人看着，居民照样从底下走，掉下东西就危险了。",
     "2 幢北侧",
     [("submit", 0.4)]),
    (7, "虞池小区", "safety", "urgent", "临时用电线拖在积水里",
     "施工临时用电的电线直接拖在地上，昨晚下过雨有积水，人从上面走很危险。",
     "5 幢门口",
     [("submit", 1.2), ("accept", 1.15), ("dispatch", 1.1)]),
    (4, "湖滨小区", "safety", "urgent", "基坑边只拉了一根绳子",
     "化粪池改造的基坑边上只拉了一根绳子，没有硬质围挡，放学后小孩子经常在旁边玩。",
     "1 幢西侧",
     [("submit", 0.3), ("accept", 0.27)]),
    (2, "新街小区", "quality", "normal", "外墙涂料起皮",
     "北面新刷的外墙涂料已经起皮，用手一碰就掉，怀疑基层没有处理好。",
     "3 幢北立面 5–8 层",
     [("submit", 12), ("accept", 11.8), ("dispatch", 11.5), ("rectify", 6), ("verify", 5.8, "satisfied")]),
    (3, "新街小区", "civilised", "normal", "晚上十点后还在切割钢管",
     "昨晚 10 点半还在切割钢管，噪音很大，楼里老人孩子都睡不着。",
     "3 幢北侧加工场",
     [("submit", 9), ("accept", 8.9), ("dispatch", 8.8), ("rectify", 8), ("verify", 7.8, "basically_satisfied")]),
    (5, "湖滨小区", "progress", "normal", "南门主路挖开两个星期没回填",
     "南门主路挖开已经两个星期了，一直没有回填，老人出门要绕很远，下雨天更难走。",
     "南门主路",
     [("submit", 15), ("accept", 14.5), ("dispatch", 14), ("escalate", 3),
      ("extend", 2.5, 9, "管线迁改要等燃气公司配合，申请延期回填，期间先铺钢板保证通行。")]),
    (8, "塘河新村", "opinion", "normal", "外立面颜色能不能征求意见",
     "居民想知道外立面颜色是怎么定的，能不能拿两三个方案出来征求一下大家的意见。",
     "全小区",
     [("submit", 9), ("answer", 8.5,
       "外立面的真石漆和普通涂料两个方案已写进意愿征询，下周一开始投票，每户凭通知单上的投票码投一票。"),
      ("verify", 8, "satisfied")]),
    (10, "广场路小区", "quality", "normal", "雨污管道井盖松动",
     "新装的雨污分流井盖踩上去会晃，有响声，晚上车开过去哐哐响。",
     "7 幢与 8 幢之间",
     [("submit", 5), ("accept", 4.8)]),
    (11, "广场路小区", "safety", "normal", "窨井盖被移开没有警示",
     "施工时移开的窨井盖晚上没有放回去，也没有警示锥。",
     "2 幢门口",
     [("submit", 2.5)]),
    (12, "广场路小区", "progress", "normal", "加装电梯什么时候开工",
     "6 幢 2 单元的电梯加装方案公示过了，到现在还没动静，腿脚不便的老人都在等。",
     "6 幢 2 单元",
     [("submit", 6), ("answer", 5.5,
       "电梯井道的管线迁移本周完成，施工单位计划下周一进场开挖基础，届时会在单元门口张贴告示。")]),
    (13, "东门新村", "civilised", "normal", "工地扬尘没有洒水",
     "这几天风大，工地上的土堆没有覆盖也没有洒水，灰尘一直往楼里飘。",
     "小区西侧空地",
     [("submit", 8), ("accept", 7.9), ("dispatch", 7.8), ("rectify", 7), ("reopen", 6.5), ("rectify", 3)]),
    (14, "东门新村", "quality", "normal", "楼道新换的灯不亮",
     "3 幢楼道刚换的声控灯有一半不亮，晚上上下楼很不方便。",
     "3 幢各单元楼道",
     [("submit", 14), ("accept", 13.9), ("rectify", 12), ("reopen", 11.5), ("dispatch", 11.4)]),
    (15, "东门新村", "other", "normal", "楼下路灯不亮",
     "4 幢楼下的路灯一直不亮。",
     "4 幢楼下",
     [("submit", 2), ("withdraw", 1.8, "物业今天已经修好了，撤回。")]),
    (16, "瑞光公寓", "quality", "normal", "外墙涂料起皮（重复反映）",
     "北面外墙涂料起皮。",
     "北立面",
     [("submit", 3), ("reject", 2.9,
       "这处起皮已列入竣工验收的整改清单，由施工单位在保修期内统一处理，请关注验收公示。")]),
    (17, "瑞光公寓", "quality", "normal", "单元门禁装好就坏",
     "新装的单元门禁刷卡经常没反应，老人进不了门。",
     "2 幢 1 单元",
     [("submit", 5), ("transfer", 4.8, "门禁属于智慧安防项目，由住建局统一协调。")]),
    (18, "锦湖花园", "safety", "urgent", "楼道里堆放水泥和钢管",
     "2 幢 1 单元楼道里堆了十几袋水泥和一捆钢管，把消防通道挡住了，晚上看不清容易绊倒。",
     "2 幢 1 单元楼道",
     [("submit", 6), ("accept", 5.95), ("rectify", 5.6), ("verify", 5.4, "satisfied")]),
    (19, "锦湖花园", "other", "normal", "施工公示牌信息不全",
     "小区门口的施工公示牌没有写施工单位的联系电话，也没有写工期，居民有事不知道找谁。",
     "小区正门",
     [("submit", 30), ("accept", 29.8), ("rectify", 28), ("verify", 27.8, "satisfied")]),
    (20, "锦湖花园", "civilised", "normal", "建筑垃圾堆在绿化带",
     "拆下来的旧窗户和砖头堆在绿化带里快一个星期了，没人清运。",
     "12 幢南侧绿化带",
     [("submit", 7), ("accept", 6.9), ("dispatch", 6.8), ("rectify", 5), ("verify", 4.8, "unsatisfied")]),
    (21, "锦湖花园", "quality", "normal", "屋面防水做完还是漏",
     "顶楼住户反映屋面防水刚做完，前天下雨卧室天花板还是渗水。",
     "5 幢 601 室",
     [("submit", 13), ("accept", 12.9), ("dispatch", 12.5), ("rectify", 9), ("reopen", 8),
      ("extend", 7.5, 6, "要等连续三个晴天才能重做防水层，申请延期。"), ("grant", 7),
      ("rectify", 1.5)]),
    (22, "江南新村", "safety", "normal", "吊篮停放处没有警示标志",
     "外墙施工的吊篮停放处没有警示标志，晚上看不见。",
     "8 幢西侧",
     [("submit", 3.5)]),
    (23, "江南新村", "opinion", "normal", "希望增加老年人休息座椅",
     "口袋公园改造时能不能多放几张带靠背的座椅，老人走累了可以歇一歇。",
     "口袋公园",
     [("submit", 26), ("answer", 25.5), ("verify", 25.3, "basically_satisfied")]),
    (24, "江南新村", "progress", "normal", "雨污分流工程进度慢",
     "雨污分流这段已经停工十来天了，沟还开着，希望加快进度。",
     "小区东门",
     [("submit", 9), ("accept", 8.9), ("dispatch", 8.5)]),
    (25, "江南新村", "civilised", "normal", "施工车辆堵住消防通道",
     "每天早上混凝土罐车停在 3 幢前的消防通道上，一停就是一两个小时，救护车都进不来。",
     "3 幢前消防通道",
     [("submit", 4), ("reject", 3.8, "车辆停放属于小区物业管理范围，请向物业反映。"),
      ("appeal", 3, "罐车是施工单位的，物业说管不了，请住建局督促施工单位安排车辆停放。"),
      ("accept", 2.9), ("dispatch", 2.8)]),
    (9, "塘河新村", "opinion", "normal", "希望多装几个电动车充电桩",
     "居民普遍反映电动车充电难，希望在 5 幢旁边的空地多装几个充电桩，方便大家，也防止飞线充电。",
     "5 幢旁空地",
     [("submit", 1), ("answer", 0.6,
       "充电桩已列入这次意愿征询的第 5 项（新增停车位及电动车充电桩），请居民凭投票码投票，通过后纳入改造。")]),
    (6, "虞池小区", "quality", "normal", "新砌的花坛开裂",
     "中心花园新砌的花坛才一个月就裂了好几条缝。",
     "中心花园",
     [("submit", 40), ("accept", 39.9), ("dispatch", 39.5), ("rectify", 36), ("verify", 35.8, "satisfied")]),
    (2, "新街小区", "civilised", "normal", "施工人员在楼道抽烟",
     "有施工人员在楼道里抽烟，烟头乱扔，有火灾隐患。",
     "1 幢楼道",
     [("submit", 45), ("accept", 44.9), ("dispatch", 44.8), ("rectify", 44), ("verify", 43.8, "satisfied")]),
]  # fmt: skip

# Site visits: (project, supervisor no., days ago, {check: problem note}). This year's; the
# 2023 batch's are made from its projects' dates. 虞池小区 has had none for weeks: the bureau's
# list of projects nobody has patrolled shows it.
CURRENT_PATROLS = [
    ("新街小区", 1, 16, {}),
    ("新街小区", 3, 2, {"debris": "1 幢东侧拆下的旧窗框堆了两天，已提醒项目部清运。"}),
    ("湖滨小区", 4, 12, {}),
    ("湖滨小区", 5, 1, {"access": "南门主路仍未回填，已铺钢板，老人推车通过还是不方便。"}),
    ("广场路小区", 10, 9, {}),
    ("广场路小区", 12, 3, {"noise": "午休时间（12:00–14:00）还在打钻。"}),
    ("东门新村", 13, 1, {"dust": "西侧土方没有覆盖防尘网，洒水车这两天没来，风一吹满是灰。"}),
    ("东门新村", 15, 10, {}),
    ("锦湖花园", 18, 6, {}),
    ("锦湖花园", 20, 2, {}),
    ("江南新村", 22, 5, {"fencing": "8 幢西侧围挡有一段被风吹歪，已让工人扶正。"}),
    ("江南新村", 24, 13, {}),
    ("瑞光公寓", 16, 20, {}),
]
# The patrol problem a supervisor turned into an issue with one tap (巡查发现).
PATROL_TO_ISSUE = ("东门新村", "dust")

# The residents' votes (意愿征询): items as (kind, area, text, options, budget, share agreeing).
CONSULTATION_ITEMS = [
    ("renovate", "", "是否同意对本小区实施老旧小区改造", "", None, 0.93),
    ("scope", "building", "外立面整治及屋面防水", "真石漆\n普通涂料", 120, 0.86),
    ("scope", "building", "加装电梯（具备条件的单元）", "", 200, 0.55),
    ("scope", "pipes", "雨污分流改造", "", 150, 0.90),
    ("scope", "roads", "新增停车位及电动车充电桩", "地面划线停车\n机械立体车位", 60, 0.78),
    ("management", "", "改造后的管理方式", "引入专业物业\n业主自治管理", None, 0.76),
]
# (project, how, share of households that voted by now, paper ballots among them)
CONSULTATIONS = [
    ("新街小区", "adopted", 0.85, 6),
    ("塘河新村", "open", 0.57, 5),
]


def _image(seed: int, *, after: bool) -> ContentFile:
    """A generated site photo: sky, a building, and clutter that is gone in the after-photo."""
    rng = random.Random(seed)
    image = Image.new("RGB", (1200, 900), (150 + rng.randint(0, 60), 190, 225))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 620, 1200, 900], fill=(120, 120, 115) if not after else (70, 70, 72))
    left = rng.randint(100, 500)
    draw.rectangle(
        [left, 180, left + 520, 640], fill=(215, 205, 185) if not after else (236, 232, 222)
    )
    for row in range(4):
        for col in range(5):
            x, y = left + 30 + col * 100, 210 + row * 105
            draw.rectangle([x, y, x + 60, y + 70], fill=(90, 110, 140))
    if not after:
        for _ in range(12):
            x, y = rng.randint(0, 1150), rng.randint(640, 860)
            draw.rectangle(
                [x, y, x + rng.randint(20, 90), y + rng.randint(10, 40)], fill=(160, 110, 60)
            )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return ContentFile(out.getvalue(), name=f"demo-{seed}.jpg")


@contextmanager
def _clock(moment: datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


RESPONSE_TEMPLATES = [
    (
        None,
        "accept",
        "感谢反映",
        "感谢您的监督和反映，我们已经收到，会尽快核实处理，处理进展会在这里更新。",
    ),
    ("office-anyang", "accept", "已派人核实", "已签收，已安排街道城建办工作人员今天到现场核实。"),
    (
        "office-anyang",
        "dispatch",
        "已督促施工单位",
        "已督促施工单位按规范整改，整改完成后上传整改照片，请监督员验收。",
    ),
    ("office-yuhai", "accept", "已派人核实", "已签收，已安排街道城建办工作人员到现场核实。"),
    ("office-jinhu", "accept", "已派人核实", "已签收，已安排街道城建办工作人员到现场核实。"),
    ("hongcheng", "rectify", "已整改", "已按要求整改完成，现场照片见附件，请监督员查看。"),
]


# People file, sign for and fix things between these hours; the demo's histories keep to them.
DAY_STARTS, DAY_ENDS = time(7, 30), time(21, 30)


# The story ends this long before ``now``: a step a few minutes after the last one (a 附议 after
# a filing) must still be in the past, also when the demo is loaded just after 07:30.
STORY_MARGIN = timedelta(hours=1)


def _story_anchor(now: datetime) -> datetime:
    """The latest waking moment an hour before ``now``: that moment by day, else the evening
    before."""
    local = timezone.localtime(now) - STORY_MARGIN
    if local.time() > DAY_ENDS:
        return timezone.make_aware(datetime.combine(local.date(), DAY_ENDS))
    if local.time() < DAY_STARTS:
        return timezone.make_aware(datetime.combine(local.date() - timedelta(days=1), DAY_ENDS))
    return local


def _ago(anchor: datetime, days: float) -> datetime:
    """``days`` ago, counted in waking hours: the whole days back from ``anchor``'s day, and the
    fraction spread over that day between 07:30 and 21:30 (today: up to ``anchor``). Later in
    the script is always later on the clock, and nobody acts in the middle of the night."""
    whole = int(days)
    fraction = days - whole
    local = timezone.localtime(anchor)
    if whole == 0:
        start = timezone.make_aware(datetime.combine(local.date(), DAY_STARTS))
        return anchor - (anchor - start) * fraction
    day = local.date() - timedelta(days=whole)
    end = timezone.make_aware(datetime.combine(day, DAY_ENDS))
    waking = datetime.combine(day, DAY_ENDS) - datetime.combine(day, DAY_STARTS)
    return end - waking * fraction


def _current_year(today: date) -> int:
    """This year's batch: the year its works started (about five months before today)."""
    return (today - timedelta(days=150)).year


def load(*, now: datetime | None = None) -> dict[str, int]:
    """Load the demo world; returns how many objects of each kind were created."""
    data = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    now = now or timezone.now()
    today = timezone.localdate(now)
    created: dict[str, int] = {}

    def count(kind: str, was_created: bool) -> None:
        created[kind] = created.get(kind, 0) + int(was_created)

    with transaction.atomic():
        # The demo is Ruian's: its subdistricts and departments are found within 瑞安市.
        ruian = Region.objects.ruian()
        subdistricts = {}
        for row in data["subdistricts"]:
            obj, new = Subdistrict.objects.update_or_create(
                region=ruian, code=row["code"], defaults={"name": row["name"]}
            )
            subdistricts[row["code"]] = obj
            count("subdistricts", new)

        departments = {}
        for row in data["departments"]:
            obj, new = Department.objects.update_or_create(
                region=ruian,
                name=row["name"],
                defaults={
                    "kind": row["kind"],
                    "phone": row.get("phone", ""),
                    "subdistrict": subdistricts.get(row.get("subdistrict")),
                },
            )
            departments[row["key"]] = obj
            count("departments", new)

        def neighbourhood(row: dict) -> Neighbourhood:
            flags = {
                key: row.get(key, False)
                for key in (
                    "in_shantytown_plan",
                    "expropriation_within_5_years",
                    "incomplete_facilities",
                    "strong_resident_wish",
                )
            }
            hood, new = Neighbourhood.objects.update_or_create(
                subdistrict=subdistricts[row["subdistrict"]],
                name=row["name"],
                defaults={
                    "address": row["address"],
                    "year_built": row["year_built"],
                    "buildings": row["buildings"],
                    "households": row["households"],
                    **flags,
                },
            )
            count("neighbourhoods", new)
            return hood

        def project_departments(project: Project, subdistrict: str) -> None:
            project.departments.set(
                [
                    departments["bureau"],
                    departments[f"office-{subdistrict}"],
                    departments["zhengcheng"],
                    departments["water"],
                    departments["power"],
                ]
            )

        # The 2023 batch: finished and accepted (its dates do not move with today).
        projects = {}
        for index, row in enumerate(data["neighbourhoods"]):
            hood = neighbourhood(row)
            spec = row["project"]
            project, new = Project.objects.update_or_create(
                neighbourhood=hood,
                year=OLD_BATCH,
                defaults={
                    "name": f"{hood.name}老旧小区改造工程",
                    "status": spec["status"],
                    "contractor": departments[spec["contractor"]],
                    "to_complete_this_year": spec["to_complete_this_year"],
                    **_old_project_dates(index, spec["to_complete_this_year"]),
                },
            )
            count("projects", new)
            projects[hood.name] = project
            project_departments(project, row["subdistrict"])
            if new:
                _scope(project, index, today=today)

        # This year's batch, under way: dated from today when first loaded, then left alone.
        year = _current_year(today)
        current = {}
        watchers: dict[int, list[Project]] = {}
        for index, row in enumerate(data["current_batch"]):
            hood = neighbourhood(row)
            spec = row["project"]
            project, new = Project.objects.get_or_create(
                neighbourhood=hood,
                year=year,
                defaults={
                    "name": f"{hood.name}老旧小区改造工程",
                    "status": spec["status"],
                    "contractor": departments[spec["contractor"]],
                    "to_complete_this_year": spec["to_complete_this_year"],
                    **_current_project_dates(today, spec, index),
                },
            )
            count("projects", new)
            current[hood.name] = project
            project_departments(project, row["subdistrict"])
            if new and spec.get("consultation") != "adopted":
                _scope(project, 100 + index, today=today)
            for number in spec["supervisors"]:
                watchers.setdefault(number, []).append(project)

        for key, step, title, text in RESPONSE_TEMPLATES:
            _, new = ResponseTemplate.objects.update_or_create(
                department=departments[key] if key else None,
                title=title,
                defaults={"text": text, "step": step},
            )
            count("response_templates", new)
        # 上望 has no project in this batch yet: its issues would go straight to the bureau.
        _, new = RoutingRule.objects.get_or_create(
            subdistrict=subdistricts["shangwang"],
            category="",
            defaults={
                "department": departments["bureau"],
                "note": "上望街道暂未配备监督联络员，由住建局直接办理",
            },
        )
        count("routing_rules", new)

        # One hash for every demo account: hashing 31 times would take most of the load time.
        password = make_password(data["password"])
        for row in data["staff"]:
            _user(
                row["username"],
                row["name"],
                row["mobile"],
                password,
                role=row["role"],
                department=departments[row["department"]],
                count=count,
                region=ruian if row["role"] in User.REGIONAL_ROLES else None,
            )
        admin, new = User.objects.get_or_create(
            username="admin",
            defaults={
                "is_staff": True,
                "is_superuser": True,
                "display_name": "系统管理员",
                "role": User.Role.BUREAU,
                "region": ruian,
            },
        )
        if new:
            admin.password = password
            admin.save(update_fields=["password"])
        count("users", new)

        supervisors = {}
        subdistrict_of = {row["name"]: row["subdistrict"] for row in data["neighbourhoods"]}
        appointed_on = date.fromisoformat(data["appointed_on"])
        # A demo loaded after the first term ran out shows supervisors reappointed, not lapsed.
        term_ends_on = max(date.fromisoformat(data["term_ends_on"]), today + timedelta(days=365))
        for number, row in enumerate(data["supervisors"], start=1):
            user = _user(
                row["username"],
                row["name"],
                row["mobile"],
                password,
                role=User.Role.SUPERVISOR,
                department=None,
                count=count,
                region=ruian,
            )
            home = projects[row["home"]]
            supervisor, new = Supervisor.objects.update_or_create(
                user=user,
                defaults={
                    "neighbourhood": home.neighbourhood,
                    "appointed_on": appointed_on,
                    "term_ends_on": term_ends_on,
                    "certificate_number": row["certificate"],
                },
            )
            count("supervisors", new)
            # Each watched their own neighbourhood's project and a neighbour's in the same
            # subdistrict in 2023, and watches one or two of this year's projects now.
            same = [
                p
                for name, p in projects.items()
                if subdistrict_of[name] == subdistrict_of[row["home"]]
            ]
            neighbour = same[(same.index(home) + 1) % len(same)]
            supervisor.projects.set([home, neighbour, *watchers.get(number, [])])
            supervisors[number] = supervisor

        demo_reporters = [s.user_id for s in supervisors.values()]
        fresh = not Issue.objects.filter(reporter_id__in=demo_reporters).exists()
        if fresh:
            people = _People.find(departments)
            created["issues"] = _old_issues(supervisors, projects, departments, people)
            created["issues"] += _current_issues(supervisors, current, departments, people, now)
            created["patrols"] = _patrols(supervisors, projects, current, now)
            created["issues"] += 1  # the patrol problem turned into an issue
            created["issues"] += _after_works(projects, supervisors, departments, people)
        else:
            created["issues"] = created["patrols"] = 0
        created["consultations"] = _consultations(current, supervisors, now)
        created["supports"] = _supports(now)
        created["issues"] += _second_county(password, count, now, today)
    # Outside the block above: each letter commits before it is triaged, as on the site, so that
    # its photos are in storage when a supervisor files it as an issue.
    created["letters"] = _letters(current, now)
    if fresh:
        _catch_up_the_sweep(now)
        _date_notifications(now)
    return created


# The second county-level city of the demo, under 温州 beside 瑞安, with its own bureau and a
# few projects; and the accounts that look over both (省住建厅, 温州市住建局).
YUEQING = {
    "code": "330382",
    "name": "乐清市",
    "subdistricts": [("lecheng", "乐成街道"), ("chengdong", "城东街道")],
    "bureau": ("乐清市住房和城乡建设局", "0577-62501234"),
    "offices": {"lecheng": "乐成街道办事处", "chengdong": "城东街道办事处"},
    "contractor": "乐清华宇建设有限公司",
    "neighbourhoods": [
        ("lecheng", "银溪新村", "乐成街道银溪路 18 号", 1995, 6, 240),
        ("chengdong", "清远小区", "城东街道清远路 66 号", 1991, 4, 128),
    ],
}
OVERSIGHT_ACCOUNTS = [
    ("shengting", "省住建厅 · 城建处王处长", "13857100001", "330000"),
    ("wenzhou", "温州市住建局 · 城建科李科长", "13857700001", "330300"),
]
YUEQING_ACCOUNTS = [  # username, name, mobile, role, department key
    ("yueqing", "乐清市住建局 · 周工", "13857700100", User.Role.BUREAU, "bureau"),
    ("lecheng", "乐成街道 · 郑科长", "13857700201", User.Role.STAFF, "lecheng"),
    ("huayu01", "华宇建设 · 项目部", "13857700301", User.Role.STAFF, "contractor"),
]


def _second_county(password: str, count, now: datetime, today: date) -> int:
    """乐清市: two projects under way, a supervisor, and three issues (one closed, one being
    fixed, one past its sign-for limit for the province to press on); and the province's and
    Wenzhou's accounts. Returns the number of issues filed."""
    ruian = Region.objects.ruian()
    wenzhou = ruian.parent
    county, new = Region.objects.get_or_create(
        code=YUEQING["code"],
        defaults={"name": YUEQING["name"], "level": Region.Level.COUNTY, "parent": wenzhou},
    )
    count("regions", new)
    subdistricts = {}
    for code, name in YUEQING["subdistricts"]:
        subdistricts[code], new = Subdistrict.objects.get_or_create(
            region=county, code=code, defaults={"name": name}
        )
        count("subdistricts", new)
    departments = {}
    name, phone = YUEQING["bureau"]
    departments["bureau"], new = Department.objects.get_or_create(
        region=county, name=name, defaults={"kind": Department.Kind.BUREAU, "phone": phone}
    )
    count("departments", new)
    for code, name in YUEQING["offices"].items():
        departments[code], new = Department.objects.get_or_create(
            region=county,
            name=name,
            defaults={
                "kind": Department.Kind.SUBDISTRICT_OFFICE,
                "subdistrict": subdistricts[code],
            },
        )
        count("departments", new)
    departments["contractor"], new = Department.objects.get_or_create(
        region=county, name=YUEQING["contractor"], defaults={"kind": Department.Kind.CONTRACTOR}
    )
    count("departments", new)
    people = {}
    for username, name, mobile, role, key in YUEQING_ACCOUNTS:
        people[username] = _user(
            username,
            name,
            mobile,
            password,
            role=role,
            department=departments[key],
            count=count,
            region=county if role == User.Role.BUREAU else None,
        )
    for username, name, mobile, code in OVERSIGHT_ACCOUNTS:
        _user(
            username,
            name,
            mobile,
            password,
            role=User.Role.OVERSIGHT,
            department=None,
            count=count,
            region=Region.objects.get(code=code),
        )
    projects = []
    year = _current_year(today)
    spec = {"status": "construction", "start": -120, "length": 200}
    for index, (code, name, address, built, buildings, households) in enumerate(
        YUEQING["neighbourhoods"]
    ):
        hood, new = Neighbourhood.objects.get_or_create(
            subdistrict=subdistricts[code],
            name=name,
            defaults={
                "address": address,
                "year_built": built,
                "buildings": buildings,
                "households": households,
            },
        )
        count("neighbourhoods", new)
        project, new = Project.objects.get_or_create(
            neighbourhood=hood,
            year=year,
            defaults={
                "name": f"{name}老旧小区改造工程",
                "status": spec["status"],
                "contractor": departments["contractor"],
                "to_complete_this_year": True,
                **_current_project_dates(today, spec, index),
            },
        )
        count("projects", new)
        if new:
            project.departments.set([departments["bureau"], departments[code]])
            _scope(project, 200 + index, today=today)
        projects.append(project)
    user, new = User.objects.get_or_create(
        username="yqjiandu01",
        defaults={
            "display_name": "潘立群",
            "mobile": "13857700011",
            "role": User.Role.SUPERVISOR,
            "region": county,
            "password": password,
        },
    )
    count("users", new)
    supervisor, new = Supervisor.objects.get_or_create(
        user=user,
        defaults={
            "neighbourhood": projects[0].neighbourhood,
            "appointed_on": date(year, 3, 1),
            "term_ends_on": date(year + 2, 2, 28),
            "certificate_number": f"YQJD-{year}-001",
        },
    )
    count("supervisors", new)
    supervisor.projects.set(projects)
    if Issue.objects.filter(project__in=projects).exists():
        return 0
    anchor = _story_anchor(now)
    office, builder = people["lecheng"], people["huayu01"]
    with _clock(_ago(anchor, 20)):
        closed = services.submit_issue(
            reporter=user,
            project=projects[0],
            category=Issue.Category.CIVILISED,
            title="银溪新村 2 幢门口建筑垃圾堆了一个星期",
            description="拆下来的旧窗框和碎砖堆在 2 幢单元门口，老人进出要绕着走。",
            building="2幢",
            photos=[_image(901, after=False)],
        )
    with _clock(_ago(anchor, 19.9)):
        services.accept_issue(closed, actor=office, text="已签收，今天安排清运。")
    with _clock(_ago(anchor, 19.8)):
        services.dispatch_issue(closed, actor=office, department=departments["contractor"])
    with _clock(_ago(anchor, 19)):
        services.rectify_issue(
            closed, actor=builder, text="垃圾已清运，门口已冲洗。", photos=[_image(902, after=True)]
        )
    with _clock(_ago(anchor, 18.5)):
        services.verify_issue(closed, actor=user, rating=Issue.Rating.SATISFIED, text="干净了")
    with _clock(_ago(anchor, 6)):
        fixing = services.submit_issue(
            reporter=user,
            project=projects[0],
            category=Issue.Category.QUALITY,
            title="银溪新村 5 幢外墙保温板有空鼓",
            description="5 幢东面外墙敲上去声音发空，有两块已经鼓起来了。",
            building="5幢",
            photos=[_image(903, after=False)],
        )
    with _clock(_ago(anchor, 5.8)):
        services.accept_issue(fixing, actor=office, text="已签收，请施工单位核查。")
    with _clock(_ago(anchor, 5.7)):
        services.dispatch_issue(fixing, actor=office, department=departments["contractor"])
    with _clock(_ago(anchor, 4)):
        services.submit_issue(
            reporter=user,
            project=projects[1],
            category=Issue.Category.SAFETY,
            title="清远小区 3 幢脚手架没有挂安全网",
            description="3 幢北面脚手架外侧没有安全网，下面就是小区主干道，每天有学生经过。",
            building="3幢",
            photos=[_image(904, after=False)],
        )
    return 3


def _bureau_user() -> User | None:
    """Ruian's coordinator, who acts for the bureau in Ruian's stories."""
    return User.objects.filter(
        role=User.Role.BUREAU, is_superuser=False, region=Region.objects.ruian()
    ).first()


def _user(username, name, mobile, password, *, role, department, count, region=None) -> User:
    user, new = User.objects.get_or_create(
        username=username,
        defaults={
            "display_name": name,
            "mobile": mobile,
            "role": role,
            "department": department,
            "region": region,
        },
    )
    if new:
        user.password = password
        user.save(update_fields=["password"])
    count("users", new)
    return user


def _old_project_dates(index: int, to_complete: bool) -> dict:
    """The 2023 batch's milestones: 25 projects built April–December 2023 and accepted by early
    2024; the four not planned to finish in 2023 built from September 2023 to May 2024. Actual
    dates fall within days of the plan, a few a little late."""
    if to_complete:
        start = date(OLD_BATCH, 4, 10) + timedelta(days=7 * (index % 10))
        end = start + timedelta(days=170)
    else:
        start = date(OLD_BATCH, 9, 4) + timedelta(days=7 * (index % 4))
        end = start + timedelta(days=240)
    consultation = start - timedelta(days=70)
    design = start - timedelta(days=25)
    acceptance = end + timedelta(days=35)
    actual_end = end + timedelta(days=(index * 7) % 17 - 10)  # 10 days early … 6 days late
    return {
        "consultation_planned": consultation,
        "consultation_actual": consultation + timedelta(days=index % 4),
        "design_planned": design,
        "design_actual": design + timedelta(days=index % 5),
        "planned_start": start,
        "planned_end": end,
        "actual_start": start + timedelta(days=index % 5),
        "actual_end": actual_end,
        "acceptance_planned": acceptance,
        "acceptance_actual": acceptance + timedelta(days=(index * 5) % 11 - 5),
    }


def _current_project_dates(today: date, spec: dict, index: int) -> dict:
    """This year's milestones, from ``start`` (days from today to the planned start) and
    ``length`` (planned days of works). What has happened has its actual date."""
    status = spec["status"]
    start = today + timedelta(days=spec["start"])
    end = start + timedelta(days=spec["length"])
    consultation = start - timedelta(days=75)
    design = start - timedelta(days=30)
    dates = {
        "consultation_planned": consultation,
        "consultation_actual": None,
        "design_planned": design,
        "design_actual": None,
        "planned_start": start,
        "planned_end": end,
        "actual_start": None,
        "actual_end": None,
        "acceptance_planned": end + timedelta(days=30),
        "acceptance_actual": None,
    }
    if consultation <= today:
        dates["consultation_actual"] = consultation  # the open vote began on the day planned
    if status in ("construction", "completed", "accepted"):
        dates["consultation_actual"] = consultation + timedelta(days=index % 3)
        dates["design_actual"] = design + timedelta(days=index % 4)
        dates["actual_start"] = start + timedelta(days=index % 3)
    if status in ("completed", "accepted"):
        dates["actual_end"] = min(end, today - timedelta(days=12))
    return dates


def _scope_progress(project: Project, rng: random.Random, today: date) -> int:
    """How far one line of work has got: done for a finished project, none before the works,
    else about the share of the works' planned time gone by (some lines ahead, some behind)."""
    if project.status in (Project.Status.COMPLETED, Project.Status.ACCEPTED):
        return 100
    if project.status != Project.Status.CONSTRUCTION or not project.actual_start:
        return 0
    span = max((project.planned_end - project.planned_start).days, 1)
    share = (today - project.actual_start).days / span
    progress = round((share * 100 + rng.randint(-25, 20)) / 5) * 5
    return max(5, min(100, progress))


def _scope(project: Project, index: int, *, today: date) -> None:
    if project.status in (Project.Status.PLANNING, Project.Status.CONSULTING):
        return  # decided by the residents' vote, then designed
    rng = random.Random(index)
    chosen = sorted(rng.sample(range(len(SCOPE_CHOICES)), rng.randint(4, 6)))
    for position in chosen:
        area, description, budget = SCOPE_CHOICES[position]
        ScopeItem.objects.create(
            project=project,
            area=area,
            description=description,
            budget=budget,
            progress=_scope_progress(project, rng, today),
        )


class _People:
    """Who acts for each side in the demo's histories."""

    def __init__(self, handlers, bureau_user, contractor_staff, bureau, members=None):
        self.handlers = handlers
        self.members = members or {}  # a contractor's or property manager's own staff
        self.bureau_user = bureau_user
        self.contractor_staff = contractor_staff
        self.bureau = bureau

    @classmethod
    def find(cls, departments: dict[str, Department]) -> _People:
        return cls(
            {
                office.subdistrict_id: office.members.filter(role=User.Role.STAFF).first()
                for office in Department.objects.filter(kind=Department.Kind.SUBDISTRICT_OFFICE)
            },
            _bureau_user(),
            {
                d.pk: d.members.first()
                for d in Department.objects.filter(kind=Department.Kind.CONTRACTOR)
            },
            departments["bureau"],
            {
                d.pk: d.members.first()
                for d in Department.objects.filter(
                    kind__in=[Department.Kind.CONTRACTOR, Department.Kind.PROPERTY_MANAGER]
                )
            },
        )

    def handler(self, issue: Issue | None, project: Project):
        if issue is not None and issue.department_id == self.bureau.pk:
            return self.bureau_user
        if issue is not None and self.members.get(issue.department_id):
            return self.members[issue.department_id]  # routed straight to them (保修、长效管理)
        return self.handlers.get(project.neighbourhood.subdistrict_id) or self.bureau_user


def _old_issues(supervisors, projects, departments, people: _People) -> int:
    """The 2023 batch's issues, each filed on the reporter's own project while it was built."""
    made = 0
    for seed, (number, category, urgency, title, description, location, history) in enumerate(
        OLD_ISSUES, start=1
    ):
        supervisor = supervisors[number]
        project = projects[supervisor.neighbourhood.name]
        span = (project.actual_end - project.actual_start).days
        filed_on = project.actual_start + timedelta(days=20 + (seed * 37) % max(span - 50, 1))
        filed = timezone.make_aware(
            datetime.combine(filed_on, time(8, 40)) + timedelta(minutes=(seed * 23) % 90)
        )
        steps = [
            (name, filed + timedelta(days=rest[0]), *rest[1:]) if rest else (name, None)
            for name, *rest in history
        ]
        _play(seed, supervisor, project, category, urgency, title, description, location, steps,
              departments, people)  # fmt: skip
        made += 1
    return made


def _current_issues(supervisors, current, departments, people: _People, now: datetime) -> int:
    made = 0
    for seed, row in enumerate(CURRENT_ISSUES, start=len(OLD_ISSUES) + 1):
        number, name, category, urgency, title, description, location, history = row
        anchor = _story_anchor(now)
        steps = [(step, _ago(anchor, days_ago), *extra) for step, days_ago, *extra in history]
        _play(seed, supervisors[number], current[name], category, urgency, title, description,
              location, steps, departments, people, now)  # fmt: skip
        made += 1
    return made


def _play(
    seed, supervisor, project, category, urgency, title, description, location, steps,
    departments, people: _People, now: datetime | None = None, issue: Issue | None = None,
) -> Issue:  # fmt: skip
    """File one issue and take it through ``steps`` ((name, moment, *extra)), each at its time,
    through the workflow services; then the bureau publishes the finished or notable ones.
    Given an ``issue`` filed elsewhere (验收遗留), the steps take it on from there."""
    reporter = supervisor.user
    moment = None
    for name, moment, *extra in steps:
        if name == "lapse":  # nobody checked the fix: reminded, then closed unrated
            issue.refresh_from_db()
            with _clock(issue.verify_remind_at):
                services.remind_reporter(issue, now=issue.verify_remind_at)
            moment = issue.verify_due_at
            with _clock(moment):
                issue = services.expire_verification(issue, now=moment)
            continue
        with _clock(moment):
            handler = people.handler(issue, project)
            if name == "submit":
                issue = services.submit_issue(
                    reporter=reporter,
                    project=project,
                    category=category,
                    urgency=urgency,
                    title=title,
                    description=description,
                    location=location,
                    **_opinion_fields(category, location, seed, title + description),
                    photos=[_image(seed * 10 + k, after=False) for k in range(1 + seed % 2)],
                )
            elif name == "accept":
                issue = services.accept_issue(
                    issue, actor=handler, text="已签收，马上安排人员到现场核实。"
                )
            elif name == "dispatch":
                issue = services.dispatch_issue(
                    issue,
                    actor=handler,
                    department=project.contractor,
                    text="请施工单位按期整改，整改后上传照片。",
                )
            elif name == "rectify":
                actor = people.contractor_staff.get(issue.contractor_id) or handler
                issue = services.rectify_issue(
                    issue,
                    actor=actor,
                    text="已按要求整改完毕，请监督员查看。",
                    photos=[_image(seed * 10 + 7, after=True)],
                )
            elif name == "verify":
                issue = services.verify_issue(
                    issue,
                    actor=reporter,
                    rating=extra[0],
                    text=(
                        "去现场看了，还有不少碎砖没清走，请再清理一次。"
                        if extra[0] == "unsatisfied"
                        else "现场看过了，谢谢。"
                    ),
                )
            elif name == "answer":
                issue = services.answer_issue(
                    issue,
                    actor=handler,
                    text=extra[0]
                    if extra
                    else "这件事已经纳入改造方案，具体安排会在小区公示栏和监督群里同步，欢迎继续提意见。",
                )
            elif name == "reopen":
                issue = services.reopen_issue(
                    issue, actor=reporter, text="去现场看了，问题还在，请再处理。"
                )
            elif name == "reject":
                issue = services.reject_issue(issue, actor=handler, text=extra[0])
            elif name == "withdraw":
                issue = services.withdraw_issue(issue, actor=reporter, text=extra[0])
            elif name == "transfer":
                issue = services.transfer_issue(
                    issue, actor=handler, department=departments["bureau"], text=extra[0]
                )
            elif name == "escalate":
                issue = services.escalate_issue(
                    issue,
                    actor=people.bureau_user,
                    text="请街道和施工单位三天内回填恢复通行，并报告进度。",
                )
            elif name == "appeal":
                issue = services.appeal_issue(issue, actor=reporter, text=extra[0])
            elif name == "extend":
                days, reason = extra  # days past the deadline it runs against
                request = services.request_extension(
                    issue,
                    actor=people.contractor_staff.get(issue.contractor_id) or handler,
                    until=timezone.localdate(issue.rectify_due_at) + timedelta(days=days),
                    text=reason,
                )
                # Its own row's time (the field's default is not the simulated clock).
                ExtensionRequest.objects.filter(pk=request.pk).update(created_at=moment)
            elif name == "grant":
                request = issue.extensions.get(status=ExtensionRequest.Status.PENDING)
                services.decide_extension(
                    request, actor=people.bureau_user, grant=True, note="同意，请按新期限完成。"
                )
                issue.refresh_from_db()
            else:  # pragma: no cover - a typo in the script above
                raise ValueError(name)
    if issue.status == Issue.Status.CLOSED or seed % 3 == 0:
        published = moment + timedelta(hours=2)
        with _clock(min(published, now - timedelta(minutes=5)) if now else published):
            services.publish_issue(issue, actor=people.bureau_user)
    return issue


# --- after the works (issue 19): acceptance with residents, the survey, warranty, management ---

# Three of the 2023 batch, told to the end: (role, neighbourhood).
PASSED, FAILED_FIRST, MANAGED = "万松新村", "虹桥北路小区", "仓前小区"
ROLL_SIZE = 36  # households imported for a 2023 project's acceptance and survey

# The representatives' views: (opinion, note, entered from paper, with a photo).
AGREE, RESERVE = AcceptanceView.Opinion.AGREE, AcceptanceView.Opinion.RESERVATION
PASSED_VIEWS = [
    (AGREE, "外墙和屋面都做好了，楼道亮堂多了。", False, False),
    (AGREE, "", True, False),
    (AGREE, "停车位划得清楚，充电桩好用。", False, False),
    (AGREE, "", False, False),
    (RESERVE, "养老服务站的无障碍坡道扶手还没装，希望尽快补上。", False, False),
]
FIRST_ROUND_VIEWS = [
    (AGREE, "", False, False),
    (RESERVE, "3 幢北面外墙雨后渗水，墙面有水印，请整改后再验收。", False, True),
    (AGREE, "楼道粉刷干净。", True, False),
    (RESERVE, "同意楼上邻居的意见，外墙渗水没解决。", False, False),
    (AGREE, "", False, False),
]
SECOND_ROUND_VIEWS = [
    (AGREE, "", False, False),
    (AGREE, "外墙渗水已经修好，下过两场雨都没再渗。", False, False),
    (AGREE, "", True, False),
    (AGREE, "看过了，同意。", False, False),
    (AGREE, "", False, False),
]
SURVEY_COMMENTS = [
    "改造后小区干净多了，谢谢监督员。",
    "施工期间噪音有点大，但总体满意。",
    "停车还是紧张，希望再想想办法。",
    "",
    "楼道灯终于亮了。",
]


def _at(day: date, hours: float) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(7, 30))) + timedelta(hours=hours - 7.5)


def _home_supervisor(project: Project, supervisors: dict) -> Supervisor:
    return next(s for s in supervisors.values() if s.neighbourhood_id == project.neighbourhood_id)


def _after_works(projects, supervisors, departments, people: _People) -> int:
    """The 2023 batch's life after its works, played through the services at the times they
    happened: 万松新村 accepted with residents, surveyed, and a warranty defect fixed by its
    contractor; 虹桥北路小区 failed its first acceptance over a leaking wall (验收遗留), passed the
    second; 仓前小区 handed over to its property manager, who took an upkeep issue. Each project
    ends accepted on the date its milestones already say (``_old_project_dates``)."""
    bureau = people.bureau_user

    passed = projects[PASSED]
    reporter = _home_supervisor(passed, supervisors)
    accepted_on = passed.acceptance_actual
    households, representatives = _representatives(_roll(passed, bureau))
    _hold_acceptance(passed, bureau, accepted_on, representatives, PASSED_VIEWS, seed=901)
    _survey(passed, bureau, reporter.user, households, accepted_on)
    filed = _at(accepted_on + timedelta(days=150), 8.9)
    _play(931, reporter, passed, "quality", "normal", "保修期内屋面又渗水",
          "今年梅雨季 5 幢顶楼卧室天花板又渗水了，屋面防水去年才做，还在保修期内，请保修单位来修。",
          "5 幢 602 室",
          [("submit", filed), ("accept", filed + timedelta(hours=3)),
           ("rectify", filed + timedelta(days=4)), ("verify", filed + timedelta(days=4, hours=5), "satisfied")],
          departments, people)  # fmt: skip

    failed = projects[FAILED_FIRST]
    second_on = failed.acceptance_actual
    first_on = failed.acceptance_planned - timedelta(days=9)
    _others, representatives = _representatives(_roll(failed, bureau))
    first = _hold_acceptance(
        failed, bureau, first_on, representatives, FIRST_ROUND_VIEWS, seed=902, close=False
    )
    leftover_view = first.views.filter(opinion=RESERVE, photos__isnull=False).first()
    inviter = _home_supervisor(failed, supervisors)
    moment = _at(first_on, 11.2)
    with _clock(moment):
        issue = acceptances.file_leftover(
            leftover_view, actor=inviter.user, deadline=first_on + timedelta(days=10)
        )
    _redate_acceptance(first, moment)
    with _clock(_at(first_on, 11.5)):
        acceptances.close_acceptance(first, actor=bureau)
    _redate_acceptance(first, _at(first_on, 11.5))
    fixed = _at(first_on, 15)
    _play(932, inviter, failed, issue.category, issue.urgency, issue.title, issue.description, "",
          [("accept", fixed), ("dispatch", fixed + timedelta(hours=1)),
           ("rectify", fixed + timedelta(days=7)), ("verify", fixed + timedelta(days=7, hours=4), "satisfied")],
          departments, people, issue=issue)  # fmt: skip
    _hold_acceptance(
        failed, bureau, second_on, representatives, SECOND_ROUND_VIEWS, seed=903, reopen=False
    )

    managed = projects[MANAGED]
    ends = max(warranty.warranty_ends(item, managed) for item in managed.scope_items.all())
    handed = ends + timedelta(days=1)
    if handed > timezone.localdate() - timedelta(days=45):
        # Loaded before the warranty ran out: handed over a month after acceptance, as many are.
        handed = managed.acceptance_actual + timedelta(days=30)
    with _clock(_at(handed, 10)):
        managed = warranty.hand_over_project(
            managed, actor=bureau, kind=warranty.Manager.PROPERTY_MANAGER,
            manager=departments["property"], on=handed,
        )  # fmt: skip
    filed = _at(handed + timedelta(days=20), 9.3)
    _play(933, _home_supervisor(managed, supervisors), managed, "other", "normal",
          "小区道路落叶和垃圾没人清扫",
          "南门到中心花园那段路落叶和塑料袋堆了好几天没人扫，垃圾桶也满了，请物业安排保洁。",
          "南门至中心花园道路",
          [("submit", filed), ("accept", filed + timedelta(hours=2)),
           ("rectify", filed + timedelta(days=1)), ("verify", filed + timedelta(days=1, hours=3), "satisfied")],
          departments, people)  # fmt: skip
    return 2  # the 验收遗留 issue is counted with its acceptance


def _roll(project: Project, bureau_user) -> list:
    """The households of a 2023 project (its vote was held on paper then): imported through the
    consultations' import, as the bureau would to choose representatives and survey them."""
    if not acceptances.representative_choices(project).exists():
        closes_on = project.consultation_actual
        consultation = Consultation.objects.create(
            project=project,
            title=f"{project.neighbourhood.name}住户名册",
            opens_on=closes_on - timedelta(days=14),
            closes_on=closes_on,
            created_by=bureau_user,
        )
        made = _at(closes_on - timedelta(days=20), 9)
        Consultation.objects.filter(pk=consultation.pk).update(created_at=made, updated_at=made)
        rows = [["楼栋", "单元", "室"]] + [
            [str(b), str(u), f"{floor}0{room}"]
            for b in range(1, 4)
            for u in (1, 2)
            for floor in range(1, 7)
            for room in (1, 2)
        ][:ROLL_SIZE]
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        residents.import_households(consultation, io.BytesIO(out.getvalue().encode("utf-8")))
    return list(acceptances.representative_choices(project))


def _representatives(households: list) -> tuple[list, list]:
    """Five representatives from across the neighbourhood (every seventh household of the roll:
    each from another building or stairway), and the other households."""
    chosen = households[::7][:5]
    return [h for h in households if h not in chosen], chosen


def _redate_acceptance(acceptance: Acceptance, moment: datetime) -> None:
    """The last event's time (its field's default is not the simulated clock)."""
    last = acceptance.events.order_by("-pk").first()
    AcceptanceEvent.objects.filter(pk=last.pk).update(created_at=moment)
    Acceptance.objects.filter(pk=acceptance.pk).update(updated_at=moment)


def _hold_acceptance(
    project, bureau_user, held_on, households, views, *, seed, close=True, reopen=True
) -> Acceptance:
    """Schedule an acceptance ten days ahead, record every view on the day (supervisors agree),
    and close it at noon unless ``close`` is false. ``reopen``: the project first goes back to
    完工 (the loader dates it accepted)."""
    if reopen:
        Project.objects.filter(pk=project.pk).update(
            status=Project.Status.COMPLETED, acceptance_actual=None
        )
    scheduled = _at(held_on - timedelta(days=10), 10)
    with _clock(scheduled):
        acceptance = acceptances.schedule_acceptance(
            project,
            actor=bureau_user,
            held_on=held_on,
            place=f"{project.neighbourhood.name}党群服务点",
            households=households,
        )
    Acceptance.objects.filter(pk=acceptance.pk).update(created_at=scheduled)
    _redate_acceptance(acceptance, scheduled)
    by_household = {h.pk: k for k, h in enumerate(households)}
    clerk = None
    moment = _at(held_on, 9.5)
    # Supervisors first: one of them enters the paper forms.
    for view in acceptance.views.order_by("-role", "pk").select_related("user", "household"):
        moment += timedelta(minutes=6)
        with _clock(moment):
            if view.role == AcceptanceView.Role.SUPERVISOR:
                clerk = clerk or view.user
                acceptances.record_view(
                    acceptance, opinion=AGREE, note="现场看过，同意验收。", actor=view.user
                )
            else:
                opinion, note, paper, photo = views[by_household[view.household_id]]
                acceptances.record_view(
                    acceptance,
                    opinion=opinion,
                    note=note,
                    photos=[_image(seed, after=False)] if photo else [],
                    household=view.household,
                    entered_by=clerk if paper else None,
                )
        _redate_acceptance(acceptance, moment)
    if close:
        closed = _at(held_on, 11.5)
        with _clock(closed):
            acceptances.close_acceptance(acceptance, actor=bureau_user)
        _redate_acceptance(acceptance, closed)
    return acceptance


def _survey(project, bureau_user, clerk, households, accepted_on: date) -> None:
    """A three-week survey opened a week after acceptance: 14 households answer, the first two
    from paper (代录 by a supervisor of the project)."""
    opens_on = accepted_on + timedelta(days=7)
    opened = _at(opens_on, 9)
    with _clock(opened):
        survey = surveys.open_survey(
            project, actor=bureau_user, opens_on=opens_on, closes_on=opens_on + timedelta(days=21)
        )
    Survey.objects.filter(pk=survey.pk).update(created_at=opened, updated_at=opened)
    rng = random.Random(904)
    ratings = ["satisfied"] * 6 + ["basically_satisfied"] * 3 + ["unsatisfied"]
    for k, household in enumerate(households[:14]):
        moment = _at(opens_on + timedelta(days=1 + k), 10 + k % 8)
        with _clock(moment):
            answer = surveys.answer_survey(
                survey,
                household,
                surveys.Answers(
                    overall=rng.choice(ratings),
                    conduct=rng.choice(ratings),
                    areas={area: rng.choice(ratings) for area, _label in survey.area_choices()},
                    comment=SURVEY_COMMENTS[k % len(SURVEY_COMMENTS)],
                ),
                entered_by=clerk if k < 2 else None,
            )
        SurveyAnswer.objects.filter(pk=answer.pk).update(created_at=moment, updated_at=moment)


def _catch_up_the_sweep(now: datetime) -> None:
    """Play back the periodic job (every 15 minutes) over this year's open issues, as if it had
    run all along: each overdue issue escalated 15 minutes after its limit passed, each fix or
    answer left unchecked reminded and then closed unrated on time. The real sweep then finds
    nothing new, and the feed has each of these lines once, at the time it happened."""
    late = timedelta(minutes=15)
    for issue in Issue.objects.open().filter(due_at__lt=now - late).order_by("due_at", "pk"):
        if issue.escalated_at is not None and issue.escalated_at >= issue.due_at:
            continue  # the bureau pressed on it after the limit already
        with _clock(issue.due_at + late):
            services.escalate_issue(issue, actor=None, text="")
    waiting = Issue.objects.filter(status__in=[Issue.Status.RECTIFIED, Issue.Status.ANSWERED])
    for issue in waiting.filter(verify_remind_at__lt=now - late).order_by("pk"):
        moment = issue.verify_remind_at + late
        with _clock(moment):
            services.remind_reporter(issue, now=moment)
    for issue in waiting.filter(verify_due_at__lt=now - late).order_by("pk"):
        moment = issue.verify_due_at + late
        with _clock(moment):
            services.expire_verification(issue, now=moment)


def _patrols(supervisors, projects, current, now: datetime) -> int:
    """Site visits: two on each of a dozen 2023 projects while they were built, and this year's
    over the last three weeks; one problem found this week became an issue with one tap."""
    made = 0
    visits = []
    for number, supervisor in sorted(supervisors.items())[::2]:
        project = projects[supervisor.neighbourhood.name]
        for k, share in enumerate((0.3, 0.7)):
            day = project.actual_start + timedelta(
                days=round((project.actual_end - project.actual_start).days * share) + number % 5
            )
            moment = timezone.make_aware(datetime.combine(day, time(9 + number % 7, 10 * k)))
            problems = (
                {"noise": "中午还在用电镐，居民午休受影响。"} if number % 6 == 1 and k else {}
            )
            visits.append((project, supervisor, moment, problems))
    for name, number, days_ago, problems in CURRENT_PATROLS:
        day = timezone.localdate(now) - timedelta(days=days_ago)
        moment = timezone.make_aware(datetime.combine(day, time(9 + number % 6, 15)))
        visits.append((current[name], supervisors[number], min(moment, now), problems))
    for project, supervisor, moment, problems in visits:
        with _clock(moment):
            patrol = residents.log_patrol(
                supervisor=supervisor.user,
                project=project,
                checks=[
                    residents.CheckInput(
                        item=item, ok=item not in problems, note=problems.get(item, "")
                    )
                    for item in Patrol.Check.values
                ],
                note="整体有序，已和项目部沟通。" if problems else "现场正常。",
            )
        Patrol.objects.filter(pk=patrol.pk).update(
            created_at=moment
        )  # the field's default is not the clock
        made += 1
        if (project.neighbourhood.name, *problems) == PATROL_TO_ISSUE:
            check = patrol.checks.get(item=PATROL_TO_ISSUE[1])
            with _clock(moment + timedelta(minutes=20)):
                residents.patrol_problem_to_issue(
                    check, actor=supervisor.user, photos=[_image(777, after=False)]
                )
    return made


def _consultations(current, supervisors, now: datetime) -> int:
    """One vote closed earlier this year, its result adopted into the project's scope; one open
    now, households imported, about half of them voted, some on paper (代录)."""
    made = 0
    today = timezone.localdate(now)
    bureau_user = _bureau_user()
    for seed, (name, how, turnout, paper) in enumerate(CONSULTATIONS, start=1):
        project = current.get(name)
        if project is None:
            continue
        title = f"{project.neighbourhood.name}改造意愿征询"
        if how == "adopted":
            closes_on = project.consultation_actual
            opens_on = closes_on - timedelta(days=14)
        else:
            opens_on = project.consultation_actual or today - timedelta(days=5)
            closes_on = opens_on + timedelta(days=14)
        consultation, new = Consultation.objects.get_or_create(
            project=project,
            title=title,
            defaults={"opens_on": opens_on, "closes_on": closes_on, "created_by": bureau_user},
        )
        if not new:
            continue
        made += 1
        opened = timezone.make_aware(datetime.combine(opens_on, time(8, 30)))
        Consultation.objects.filter(pk=consultation.pk).update(
            created_at=opened - timedelta(days=6), updated_at=opened - timedelta(days=6)
        )
        for position, (kind, area, text, options, budget, _share) in enumerate(CONSULTATION_ITEMS):
            ConsultationItem.objects.create(
                consultation=consultation,
                kind=kind,
                area=area,
                text=text,
                options=options,
                budget=budget,
                position=position,
            )
        hood = project.neighbourhood
        rows = [["楼栋", "单元", "室"]] + [
            [f"{b} 幢", f"{u} 单元", f"{floor}0{room}"]
            for b in range(1, hood.buildings + 1)
            for u in (1, 2)
            for floor in range(1, 7)
            for room in (1, 2)
        ][: hood.households]
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        residents.import_households(consultation, io.BytesIO(out.getvalue().encode("utf-8")))
        _vote(consultation, project, supervisors, turnout, paper, seed, now)
        if how == "adopted":
            with _clock(
                timezone.make_aware(datetime.combine(closes_on + timedelta(days=2), time(10)))
            ):
                residents.apply_result(consultation, actor=bureau_user)
            rng = random.Random(seed)
            for item in project.scope_items.all():
                item.progress = _scope_progress(project, rng, today)
                item.save(update_fields=["progress"])
    return made


def _vote(consultation, project, supervisors, turnout, paper, seed, now) -> None:
    """``turnout`` of the households vote over the days the consultation has been open, each
    item agreed by its share of them (exactly, so that the outcome is the one told above); the
    first ``paper`` ballots were paper ones a supervisor of the project entered (代录)."""
    rng = random.Random(seed)
    items = list(consultation.items.order_by("position"))
    households = list(consultation.households.order_by("pk"))
    rng.shuffle(households)
    voters = households[: round(len(households) * turnout)]
    agreeing = {}
    for item, (*_rest, share) in zip(items, CONSULTATION_ITEMS, strict=True):
        order = list(range(len(voters)))
        rng.shuffle(order)
        agreeing[item.pk] = set(order[: round(len(voters) * share)])
    clerk = next(s.user for s in supervisors.values() if project in s.projects.all())
    # Each on a day of the vote, in waking hours, none later than an hour before now.
    anchor = _story_anchor(now)
    days = (min(consultation.closes_on, timezone.localdate(anchor)) - consultation.opens_on).days
    moments = []
    for _ in voters:
        day = consultation.opens_on + timedelta(days=rng.randint(0, days))
        moment = timezone.make_aware(datetime.combine(day, DAY_STARTS)) + timedelta(
            minutes=rng.randint(0, 14 * 60)
        )
        moments.append(min(moment, anchor - timedelta(minutes=rng.randint(60, 600))))
    moments.sort()
    times = {}
    for index, (household, moment) in enumerate(zip(voters, moments, strict=True)):
        answers = {}
        for item in items:
            agree = index in agreeing[item.pk]
            options = item.option_list()
            option = options[0 if rng.random() < 0.7 else 1] if options and agree else ""
            answers[item.pk] = (agree, option)
        with _clock(moment):
            ballot = residents.cast_ballot(
                consultation, household, answers, entered_by=clerk if index < paper else None
            )
        times[ballot.pk] = moment
    Ballot.objects.bulk_update(
        [Ballot(pk=pk, created_at=moment, updated_at=moment) for pk, moment in times.items()],
        ["created_at", "updated_at"],
    )


def _supports(now: datetime) -> int:
    """附议: on every other open issue, one to three of the project's other supervisors say "me
    too" a few hours after it was filed. Once: nothing is added when supporters exist."""
    if Support.objects.filter(supporter__isnull=False).exists():
        return 0
    made = 0
    issues = Issue.objects.filter(status__in=Issue.OPEN_STATUSES).order_by("created_at", "pk")
    for number, issue in enumerate(issues):
        if number % 2:
            continue
        others = (
            Supervisor.objects.filter(projects=issue.project_id)
            .exclude(user=issue.reporter_id)
            .select_related("user")
            .order_by("pk")
        )
        for k, supervisor in enumerate(others[: 1 + number % 3]):
            with _clock(_support_time(issue.created_at, k, now)):
                services.support_issue(issue, actor=supervisor.user)
            made += 1
    return made


def _support_time(filed: datetime, k: int, now: datetime) -> datetime:
    """The ``k``-th "me too": a few hours after filing, in waking hours, before now."""
    moment = timezone.localtime(filed + timedelta(hours=2 + 3 * k))
    if not DAY_STARTS <= moment.time() <= DAY_ENDS:
        day = moment.date() if moment.time() < DAY_STARTS else moment.date() + timedelta(days=1)
        moment = timezone.make_aware(datetime.combine(day, time(8, 10 + 20 * k)))
    latest = _story_anchor(now) - timedelta(minutes=10 * (3 - k))
    return max(min(moment, latest), filed + timedelta(minutes=5 * (k + 1)))


def _date_notifications(now: datetime) -> None:
    """Notifications are written after each step commits, with the real time: give each its
    event's time, and mark those older than two days read (nobody has 2023 news unread)."""
    read_before = now - timedelta(days=2)
    changed = []
    for notification in Notification.objects.filter(event__isnull=False).select_related("event"):
        notification.created_at = notification.event.created_at
        if notification.created_at < read_before:
            notification.read_at = notification.created_at + timedelta(hours=3)
        changed.append(notification)
    # Notices about projects (acceptance invitations, 回头看, surveys) carry their own time.
    for notification in Notification.objects.filter(project__isnull=False):
        if notification.created_at < read_before:
            notification.read_at = notification.created_at + timedelta(hours=3)
            changed.append(notification)
    Notification.objects.bulk_update(changed, ["created_at", "read_at"], batch_size=500)


def _opinion_fields(category: str, location: str, seed: int, text: str = "") -> dict:
    """A residents' opinion names its building and how many households stand behind it."""
    if category != "opinion":
        return {}
    match = re.search(r"(\d+)\s*幢", location)
    keywords = [
        ("roads", ("充电", "停车", "道路")),
        ("building", ("外立面", "颜色", "屋面", "楼道", "电梯")),
        ("landscape", ("绿化", "花坛")),
        ("care", ("老人", "养老", "托育")),
    ]
    area = next(
        (area for area, words in keywords if any(word in location + text for word in words)),
        "governance",
    )
    return {
        "building": f"{match.group(1)} 幢" if match else "全小区",
        "households": 6 + seed % 30,
        "area": area,
    }


# Residents' letters (居民来信) on two projects, one of each subdistrict office:
# (project, days ago, summary, details, building, unit, mobile, photos, what became of it).


LETTERS = [
    (
        "新街小区",
        9,
        "3 幢门口的施工围挡倒了",
        "昨晚刮大风，围挡倒在人行道上，老人和小孩只能绕到车道上走。",
        "3 幢",
        "1 单元",
        "13967700101",
        1,
        "filed-closed",
    ),
    (
        "新街小区",
        6,
        "楼道里的建筑垃圾一直没清",
        "2 单元楼道堆了一周的碎砖和水泥袋，晚上看不清容易绊倒。",
        "2 幢",
        "2 单元",
        "",
        1,
        "filed",
    ),
    (
        "新街小区",
        5,
        "2 幢楼道的垃圾还在，我们也反映过",
        "跟前面说的是同一件事，楼道还是没人清理。",
        "2 幢",
        "2 单元",
        "13967700102",
        0,
        "supported",
    ),
    (
        "新街小区",
        4,
        "外墙涂料是什么颜色？",
        "想问一下外墙最后刷成什么颜色，能不能让居民一起商量。",
        "",
        "",
        "13967700103",
        0,
        "answered",
    ),
    ("新街小区", 3, "希望小区门口多装一个快递柜", "", "", "", "", 0, "declined"),
    (
        "新街小区",
        0,
        "早上 6 点就开始打钻，太吵了",
        "这几天每天早上 6 点就开始打钻，老人孩子都睡不好，能不能 8 点以后再施工？",
        "5 幢",
        "",
        "13967700104",
        0,
        "new",
    ),
    (
        "广场路小区",
        12,
        "下水管道改造后厨房返臭",
        "1 幢 3 单元好几户厨房下水返臭，改造前没有这个问题。",
        "1 幢",
        "3 单元",
        "13967700105",
        1,
        "late",
    ),
    (
        "广场路小区",
        1,
        "绿化带里的树被挖掉了",
        "小区东侧绿化带的两棵桂花树被挖走了，是不是改造方案里的？",
        "",
        "",
        "",
        1,
        "new",
    ),
]


def _letters(projects: dict[str, Project], now: datetime) -> int:
    """Letters in every state: waiting, past their limit (reminded and escalated to the office),
    answered, declined, filed as issues (one followed to 已办结 and made public), added as support."""
    chosen = {name: projects[name] for name in {row[0] for row in LETTERS} if name in projects}
    if len(chosen) < 2 or Letter.objects.filter(project__in=chosen.values()).exists():
        return 0
    bureau_user = _bureau_user()
    made = 0
    filed_open = None
    for seed, row in enumerate(LETTERS, start=100):
        name, days_ago, summary, details, building, unit, mobile, photos, outcome = row
        project = chosen[name]
        carrier = (
            User.objects.filter(supervisor__projects=project, supervisor__is_active=True)
            .order_by("username")
            .first()
        )
        office = project.departments.filter(kind=Department.Kind.SUBDISTRICT_OFFICE).first()
        handler = office.members.filter(role=User.Role.STAFF).first() if office else bureau_user
        sent_at = _ago(_story_anchor(now), days_ago + 0.15)
        with _clock(sent_at):
            letter = letters.send_letter(
                project=project,
                summary=summary,
                details=details,
                building=building,
                unit=unit,
                mobile=mobile,
                photos=[_image(seed * 10 + k, after=False) for k in range(photos)],
                sender_address=f"demo-{seed}",
            )
        made += 1
        if outcome in ("new", "late"):
            continue
        with _clock(sent_at + timedelta(hours=5)):
            if outcome == "answered":
                letters.answer_letter(
                    letter,
                    actor=carrier,
                    text="已问过项目部：外墙按意愿征询的结果用真石漆，色卡贴在小区公示栏，颜色还可以提意见。",
                )
            elif outcome == "declined":
                letters.decline_letter(
                    letter,
                    actor=carrier,
                    reason="快递柜不在这次改造的内容里，已转告社区，由社区和物业商量。",
                )
            elif outcome == "supported" and filed_open is not None:
                if hasattr(services, "support_issue"):
                    letters.add_letter_as_support(letter, actor=carrier, issue=filed_open)
                else:  # 附议 not there yet: the same words become an answer
                    letters.answer_letter(letter, actor=carrier, text="这件事已经转为问题在办。")
            elif outcome in ("filed", "filed-closed"):
                category = "safety" if outcome == "filed-closed" else "civilised"
                # The letter's photos come along; the supervisor adds one taken on site (which
                # is all the issue gets when the whole demo loads in one transaction, as in
                # the tests: the letter's files are written only when that commits).
                issue = letters.file_letter_as_issue(
                    letter,
                    actor=carrier,
                    category=category,
                    photos=[_image(seed * 10 + 5, after=False)],
                )
                filed_open = issue if outcome == "filed" else filed_open
        if outcome == "filed-closed":
            with _clock(sent_at + timedelta(days=1)):
                issue = services.accept_issue(issue, actor=handler, text="已签收，马上到现场。")
            with _clock(sent_at + timedelta(days=2)):
                issue = services.rectify_issue(
                    issue,
                    actor=handler,
                    text="围挡已扶正并加装斜撑，请监督员查看。",
                    photos=[_image(seed * 10 + 7, after=True)],
                )
            with _clock(sent_at + timedelta(days=3)):
                issue = services.verify_issue(
                    issue, actor=carrier, rating="satisfied", text="现场看过了，围挡很牢固。"
                )
                services.publish_issue(issue, actor=bureau_user)
    letters.sweep_letters(now=now)  # the late one: reminded, then escalated to the office
    return made
