"""Addresses as people write them: 「3幢2单元101室」, 「5幢北面外墙」.

People type 「3」, 「3幢」, 「3号楼」 or 「三栋」 for a building; this writes each part once with its
measure word, so pages, slips, exports, messages and Open311 answers all read the same. The one
place this rule lives.
"""

from __future__ import annotations

# What a part may already end with; otherwise its measure word is added.
BUILDING_WORDS = ("幢", "栋", "号楼", "楼", "座", "号")
# A "building" that names the whole neighbourhood (「全小区」, 「整个小区」) takes no measure word.
AREA_WORDS = ("小区",)
UNIT_WORDS = ("单元",)
ROOM_WORDS = ("室", "号", "房")


def _part(value: str, word: str, already: tuple[str, ...]) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    return value if value.endswith(already) else f"{value}{word}"


def address(building: str = "", unit: str = "", room: str = "", location: str = "") -> str:
    """「3幢2单元101室」, 「5幢北面外墙」, 「北面外墙」, 「全小区」, or "" when nothing is known."""
    flat = "".join(
        (
            _part(building, "幢", BUILDING_WORDS + AREA_WORDS),
            _part(unit, "单元", UNIT_WORDS),
            _part(room, "室", ROOM_WORDS),
        )
    )
    location = (location or "").strip()
    return f"{flat}{location}"
