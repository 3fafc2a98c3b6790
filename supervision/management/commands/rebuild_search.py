from django.core.management.base import BaseCommand
from django.db import connections, transaction

from supervision import search


class Command(BaseCommand):
    help = "重建问题的全文检索索引（编号、标题、描述）；改动分词规则或恢复数据后运行。"

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, database: str, **options) -> None:
        connection = connections[database]
        with transaction.atomic(using=database):
            search.rebuild(connection)
        self.stdout.write("已重建检索索引。")
