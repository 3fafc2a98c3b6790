from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from supervision.digest import daily_digest, sane_day


class Command(BaseCommand):
    help = "生成某一天（默认昨天）的群众监督日报文本，可直接粘贴到微信群。"

    def add_arguments(self, parser):
        parser.add_argument("--date", help="YYYY-MM-DD, default yesterday")

    def handle(self, *args, **options) -> None:
        if options["date"]:
            try:
                day = date.fromisoformat(options["date"])
            except ValueError as error:
                raise CommandError("日期格式应为 YYYY-MM-DD") from error
            if not sane_day(day):
                raise CommandError("日期应在 2000 年到明天之间")
        else:
            day = timezone.localdate() - timedelta(days=1)
        self.stdout.write(daily_digest(day))
