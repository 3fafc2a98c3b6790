from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from supervision import demo, rollups


class Command(BaseCommand):
    help = "加载演示数据（瑞安 2023 年老旧小区改造）。可重复执行，不会重复创建。"

    def handle(self, *args, **options):
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError("演示数据只在开发模式（DJANGO_DEBUG=1）下加载，生产环境不加载。")
        created = demo.load()
        rollups.rebuild()  # the demo backdates what it made with queryset updates
        summary = "，".join(f"{kind} {n}" for kind, n in created.items() if n)
        self.stdout.write(
            self.style.SUCCESS(f"演示数据已就绪（新建：{summary or '无，已是最新'}）。")
        )
        self.stdout.write(
            "\n演示账号（密码均为 renovate-2023）：\n"
            "  jiandu01 … jiandu25  群众监督员\n"
            "  zhujianju            市住建局协调员\n"
            "  anyang / yuhai / jinhu  街道办事处工作人员\n"
            "  shigong01            施工单位（宏程建设）\n"
            "  wuye01               物业（安居物业，仓前小区长效管理）\n"
            "  yueqing              乐清市住建局协调员（第二个县级市）\n"
            "  lecheng / huayu01    乐成街道办事处 / 华宇建设（乐清）\n"
            "  yqjiandu01           乐清的群众监督员\n"
            "  shengting            省住建厅（看全省，可督办）\n"
            "  wenzhou              温州市住建局（看瑞安、乐清，可督办）\n"
            "  admin                系统管理员（/admin/）\n"
        )
