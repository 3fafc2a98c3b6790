from django.core.management.base import BaseCommand

from supervision.letters import sweep_letters
from supervision.services import escalate_overdue, sweep_unverified
from supervision.tasks import schedule_sweep


class Command(BaseCommand):
    help = (
        "督办超期问题：把新近超期的问题提请住建局督办（可重复运行，不会重复记录）。"
        " --schedule 则交给后台 db_worker 每 15 分钟运行一次。"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="book the sweep in the background worker every 15 minutes instead of running now",
        )

    def handle(self, *args, **options) -> None:
        if options["schedule"]:
            if schedule_sweep():
                self.stdout.write(
                    "已安排后台每 15 分钟检查一次超期问题（需运行 manage.py db_worker）。"
                )
            else:
                self.stderr.write("当前任务后端不支持定时，请用 cron 每 15 分钟运行本命令。")
            return
        escalated = escalate_overdue()
        self.stdout.write(f"已提请督办 {len(escalated)} 个超期问题。")
        for issue in escalated:
            self.stdout.write(f"  {issue.reference} {issue.title}")
        reminded, closed = sweep_unverified()
        self.stdout.write(f"已提醒评价 {len(reminded)} 个，逾期未评价办结 {len(closed)} 个。")
        reminded, escalated, erased = sweep_letters()
        self.stdout.write(
            f"居民来信：提醒处理 {len(reminded)} 封，转街道督促 {len(escalated)} 封，"
            f"删除联系电话 {len(erased)} 封。"
        )
