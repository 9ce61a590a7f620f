"""Territory (city > district > street > community > grid) and organizations (department > branches).

Both trees keep a materialized ``path`` ("/1/4/17/") so that "everything under this node" is one
indexed prefix match, which scoped access checks and leaderboards ask for constantly.
An organization's current paired community is kept on its row; every change is also a dated ``Pairing``, so
a closed period's 流动红旗 districts are those of the pairings in force when it ended.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points_service.db import UTCDateTime, db, enum_column


class RegionLevel(enum.StrEnum):
    CITY = "city"
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"


REGION_LEVEL_ORDER = list(RegionLevel)
REGION_LEVEL_NAMES = {
    RegionLevel.CITY: "市",
    RegionLevel.DISTRICT: "区县",
    RegionLevel.STREET: "街道",
    RegionLevel.COMMUNITY: "社区",
    RegionLevel.GRID: "网格",
}


class TreeNode:
    """Shared behaviour of the two trees: a parent, and a path of ancestor ids."""

    path: Mapped[str]

    @property
    def ancestor_ids(self) -> list[int]:
        return [int(part) for part in self.path.strip("/").split("/") if part]

    def is_within(self, other_path: str) -> bool:
        return self.path.startswith(other_path)


class Region(TreeNode, db.Model):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    level: Mapped[RegionLevel] = mapped_column(enum_column(RegionLevel, "level"))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"))
    path: Mapped[str] = mapped_column(sa.String(255), index=True, default="")

    parent: Mapped[Region | None] = relationship(remote_side=[id])


class OrgKind(enum.StrEnum):
    DEPARTMENT = "department"  # 部门党组织 (党委/党总支): the subject of organization points
    BRANCH = "branch"  # 党支部: every member belongs to exactly one


ORG_KIND_NAMES = {OrgKind.DEPARTMENT: "部门党组织", OrgKind.BRANCH: "党支部"}


class Organization(TreeNode, db.Model):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[OrgKind] = mapped_column(enum_column(OrgKind, "kind"))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    path: Mapped[str] = mapped_column(sa.String(255), index=True, default="")
    # The community a department organization is paired with for 组织报到 today (the open ``Pairing``):
    # boards, access rules and approvals follow it. Written only by ``domain.structure.pair_organization``.
    paired_community_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"))

    parent: Mapped[Organization | None] = relationship(remote_side=[id])
    paired_community: Mapped[Region | None] = relationship()

    @property
    def department_id(self) -> int:
        """The top (department) organization this node belongs to: the subject of org points."""
        return self.ancestor_ids[0]


OPEN_PAIRING = sa.text("valid_to IS NULL")


class Pairing(db.Model):
    """An organization paired with a community during [valid_from, valid_to); valid_to is NULL for the current
    one, which ``Organization.paired_community_id`` repeats. The database keeps at most one open per organization."""

    __tablename__ = "pairings"
    __table_args__ = (
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_range"),
        sa.Index("uq_pairings_open", "organization_id", unique=True,
                 postgresql_where=OPEN_PAIRING, sqlite_where=OPEN_PAIRING),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization] = relationship()
    community: Mapped[Region] = relationship()
