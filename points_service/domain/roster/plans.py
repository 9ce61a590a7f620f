"""Turning parsed roster rows into a plan: each row resolved against the database (and, for parents, the
rest of the file) into a step that creates, updates or leaves a node alone. Planning only reads; a
step's ``apply`` writes (flushes only), and ``roster_import`` runs the steps once the whole file is valid.

Lookups are loaded in bulk (by the codes and names the file mentions), never one query per row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from points_service.db import db
from points_service.domain.access import Principal, allowed
from points_service.domain.lifecycle.scheduled import ChangeAlreadyScheduled, members_with_waiting_changes
from points_service.domain.phones import hash_phone, mask_phone
from points_service.domain.roster.rows import MemberRow, OrganizationRow, RegionRow, RowError
from points_service.domain.roster.status import status_change_step
from points_service.domain.structure import (
    add_organization,
    add_region,
    enroll_member,
    pair_organization,
    transfer_member,
)
from points_service.models import (
    ORG_KIND_NAMES,
    REGION_LEVEL_NAMES,
    Member,
    Organization,
    OrgKind,
    Region,
    RegionLevel,
)

CREATED, UPDATED, SCHEDULED, UNCHANGED = "created", "updated", "scheduled", "unchanged"
CHUNK = 400  # values per IN (...): well under every backend's bound-parameter limit
LEVELS = list(RegionLevel)


@dataclass
class Step:
    row: int
    outcome: str
    apply: Callable[[], None] | None = None
    member_id: int | None = None  # the existing member the step changes: the import locks him before any step


class Unresolved(LookupError):
    pass


class NodeIndex:
    """Regions or organizations findable by code, or by a name that must be unique among them."""

    def __init__(self, nodes: Iterable, noun: str) -> None:
        self.noun = noun
        self.by_code: dict[str, object] = {}
        self.by_name: dict[str, list] = {}
        for node in nodes:
            self.by_code[node.code] = node
            self.by_name.setdefault(node.name, []).append(node)

    @classmethod
    def load(cls, statement: sa.Select, model, values: set[str], noun: str) -> NodeIndex:
        nodes = {}
        for chunk in _chunks(values):
            for node in db.session.scalars(statement.where(sa.or_(model.code.in_(chunk), model.name.in_(chunk)))):
                nodes[node.id] = node
        return cls(nodes.values(), noun)

    def find(self, value: str, prefer: Callable[[object], bool] | None = None):
        """By code, else by name; ``prefer`` settles a shared name (HR's "第一党支部" is the one in its scope)."""
        if value in self.by_code:
            return self.by_code[value]
        matches = self.by_name.get(value, [])
        if len(matches) > 1 and prefer is not None:
            matches = [node for node in matches if prefer(node)] or matches
        if len(matches) > 1:
            raise Unresolved(f"{self.noun}名称“{value}”对应 {len(matches)} 个{self.noun}，请改填编码")
        if not matches:
            raise Unresolved(f"未找到{self.noun}“{value}”")
        return matches[0]


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start:start + CHUNK]


def _by_code(model, codes: set[str]) -> dict:
    found = {}
    for chunk in _chunks(codes - {""}):
        statement = sa.select(model).where(model.code.in_(chunk)).options(selectinload(model.parent))
        found.update((node.code, node) for node in db.session.scalars(statement))
    return found


def _find(index: NodeIndex, value: str, row: int, column: str, errors: list[RowError], prefer=None):
    try:
        return index.find(value, prefer)
    except Unresolved as exc:
        errors.append(RowError(row, str(exc), column))
        return None


def _upsert(row: int, existing, wanted: dict, create: Callable[[], None]) -> Step:
    """Create when missing; otherwise set only the attributes that differ (nothing when none do)."""
    if existing is None:
        return Step(row, CREATED, create)
    changes = {name: value for name, value in wanted.items() if getattr(existing, name) != value}
    if not changes:
        return Step(row, UNCHANGED)

    def update() -> None:
        for name, value in changes.items():
            setattr(existing, name, value)

    return Step(row, UPDATED, update)


def _moved_parent(existing, parent_code: str, noun: str) -> str | None:
    current = existing.parent.code if existing.parent else ""
    if current == parent_code:
        return None
    # Moving a node would rewrite the paths of its whole subtree and every scope below it: not an import's job.
    return f"{noun}“{existing.code}”现有上级为“{current or '无'}”，导入不能更改上级，请联系系统管理员调整"


# ---- regions -------------------------------------------------------------------------------------------

def plan_regions(rows: list[RegionRow]) -> tuple[list[Step], list[RowError]]:
    in_file = {row.code: row for row in rows}
    known = _by_code(Region, {row.code for row in rows} | {row.parent_code for row in rows})
    created: dict[str, Region] = {}
    steps, errors = [], []
    # Higher levels first, so that a parent defined further down the file exists before its children.
    for row in sorted(rows, key=lambda r: (LEVELS.index(r.level), r.row)):
        row_errors = _region_problems(row, in_file, known)
        if row_errors:
            errors.extend(row_errors)
            continue

        def create(row=row) -> None:
            parent = created.get(row.parent_code) or known.get(row.parent_code)
            created[row.code] = add_region(row.code, row.name, row.level, parent)

        steps.append(_upsert(row.row, known.get(row.code), {"name": row.name}, create))
    return steps, errors


def _region_problems(row: RegionRow, in_file: dict, known: dict) -> list[RowError]:
    existing = known.get(row.code)
    if existing is not None and existing.level != row.level:
        return [RowError(row.row, f"区划编码“{row.code}”已存在且层级为{REGION_LEVEL_NAMES[existing.level]}，"
                                  f"不能改为{REGION_LEVEL_NAMES[row.level]}", "层级")]
    if row.parent_code:
        parent = in_file.get(row.parent_code) or known.get(row.parent_code)
        if parent is None:
            return [RowError(row.row, f"未找到上级区划“{row.parent_code}”", "上级编码")]
        expected = LEVELS[LEVELS.index(row.level) - 1]
        if parent.level != expected:
            return [RowError(row.row, f"上级区划“{row.parent_code}”是{REGION_LEVEL_NAMES[parent.level]}，"
                                      f"{REGION_LEVEL_NAMES[row.level]}的上级应为{REGION_LEVEL_NAMES[expected]}",
                             "上级编码")]
    moved = existing is not None and _moved_parent(existing, row.parent_code, "区划")
    return [RowError(row.row, moved, "上级编码")] if moved else []


# ---- organizations -------------------------------------------------------------------------------------

def plan_organizations(rows: list[OrganizationRow]) -> tuple[list[Step], list[RowError]]:
    in_file = {row.code: row for row in rows}
    known = _by_code(Organization, {row.code for row in rows} | {row.parent_code for row in rows})
    communities = NodeIndex.load(sa.select(Region).where(Region.level == RegionLevel.COMMUNITY), Region,
                                 {row.paired_community for row in rows if row.paired_community}, "社区")
    created: dict[str, Organization] = {}
    steps, errors = [], []
    for row in sorted(rows, key=lambda r: (r.kind is OrgKind.BRANCH, r.row)):  # departments first
        row_errors = _organization_problems(row, in_file, known)
        paired = _find(communities, row.paired_community, row.row, "结对社区", row_errors) \
            if row.paired_community else None
        if row_errors:
            errors.extend(row_errors)
            continue

        def create(row=row, paired=paired) -> None:
            parent = created.get(row.parent_code) or known.get(row.parent_code)
            created[row.code] = add_organization(row.code, row.name, row.kind, parent, paired)

        existing = known.get(row.code)
        steps.append(_with_pairing(_upsert(row.row, existing, {"name": row.name}, create), existing, paired))
    return steps, errors


def _with_pairing(step: Step, existing: Organization | None, paired: Region | None) -> Step:
    """The step, then the existing organization's new pairing when the row changes it: dated from the import,
    with its board rows following (``pair_organization``)."""
    if existing is None or existing.paired_community_id == (paired.id if paired else None):
        return step

    def apply() -> None:
        if step.apply is not None:  # the name may be unchanged
            step.apply()
        pair_organization(existing, paired)

    return Step(step.row, UPDATED, apply, step.member_id)


def _organization_problems(row: OrganizationRow, in_file: dict, known: dict) -> list[RowError]:
    errors = []
    existing = known.get(row.code)
    if existing is not None and existing.kind != row.kind:
        errors.append(RowError(row.row, f"组织编码“{row.code}”已存在且为{ORG_KIND_NAMES[existing.kind]}，"
                                        f"不能改为{ORG_KIND_NAMES[row.kind]}", "类型"))
    if row.parent_code:
        parent = in_file.get(row.parent_code) or known.get(row.parent_code)
        if parent is None:
            errors.append(RowError(row.row, f"未找到上级组织“{row.parent_code}”", "上级组织编码"))
        elif parent.kind is not OrgKind.DEPARTMENT:
            errors.append(RowError(row.row, f"上级组织“{row.parent_code}”不是部门党组织", "上级组织编码"))
    moved = existing is not None and not errors and _moved_parent(existing, row.parent_code, "组织")
    if moved:
        errors.append(RowError(row.row, moved, "上级组织编码"))
    return errors


# ---- members -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    branch: Organization
    community: Region
    grid: Region | None


def plan_members(rows: list[MemberRow], actor: Principal, phone_key: str) -> tuple[list[Step], list[RowError]]:
    branches = NodeIndex.load(sa.select(Organization).where(Organization.kind == OrgKind.BRANCH), Organization,
                              {row.branch for row in rows}, "党支部")
    communities = NodeIndex.load(sa.select(Region).where(Region.level == RegionLevel.COMMUNITY), Region,
                                 {row.community for row in rows}, "社区")
    grids = GridIndexes()
    hashes = {row.row: hash_phone(row.phone, phone_key) for row in rows}
    existing = _members_by_phone_hash(set(hashes.values()))
    waiting = members_with_waiting_changes(member.id for member in existing.values())
    steps, errors = [], []
    for row in rows:
        row_errors: list[RowError] = []
        placement = _place(row, actor, branches, communities, grids, row_errors)
        if row_errors:
            errors.extend(row_errors)
            continue
        member = existing.get(hashes[row.row])
        refused = _existing_member_refused(row, member, placement, actor, waiting)
        if refused is not None:
            errors.append(refused)
            continue
        step = _member_step(row, member, placement, hashes[row.row])
        status_step = status_change_step(row, member, actor, step.outcome != UNCHANGED, _moves(member, placement))
        if isinstance(status_step, RowError):
            errors.append(status_step)
            continue
        steps.append(_combined(step, status_step) if status_step else step)
    return steps, errors


def _existing_member_refused(row: MemberRow, member: Member | None, placement: Placement, actor: Principal,
                             waiting: set[int]) -> RowError | None:
    """A row naming a member on the roster whom the importer may not change (found by his phone anywhere in the
    city: HR of one department would otherwise rename him and move him into its own scope), or who would move
    while a scheduled change waits for him."""
    if member is None:
        return None
    if not allowed(actor, "member.manage_status", member):
        return RowError(row.row, "该手机号的党员在您管理的组织范围以外，不能由您导入、改名或转接", "手机号")
    if member.id in waiting and _moves(member, placement):
        return RowError(row.row, ChangeAlreadyScheduled.message, "所在支部")
    return None


def _combined(first: Step, then: Step) -> Step:
    def apply() -> None:
        if first.apply is not None:
            first.apply()
        then.apply()

    return Step(first.row, then.outcome if first.outcome == UNCHANGED else UPDATED, apply,
                first.member_id or then.member_id)


class GridIndexes:
    """The grids of each community the file mentions, loaded once per community."""

    def __init__(self) -> None:
        self._by_community: dict[int, NodeIndex] = {}

    def of(self, community: Region) -> NodeIndex:
        if community.id not in self._by_community:
            grids = db.session.scalars(sa.select(Region).where(
                Region.parent_id == community.id, Region.level == RegionLevel.GRID))
            self._by_community[community.id] = NodeIndex(grids, f"社区“{community.name}”的网格")
        return self._by_community[community.id]


def _place(row: MemberRow, actor: Principal, branches: NodeIndex, communities: NodeIndex,
           grids: GridIndexes, errors: list[RowError]) -> Placement | None:
    in_scope = partial(allowed, actor, "roster.import_member")
    branch = _find(branches, row.branch, row.row, "所在支部", errors, prefer=in_scope)
    if branch is not None and not in_scope(branch):
        errors.append(RowError(row.row, f"无权导入到支部“{branch.name}”：不在您管理的组织范围内", "所在支部"))
    community = _find(communities, row.community, row.row, "居住社区", errors)
    grid = _find(grids.of(community), row.grid, row.row, "网格", errors) if community and row.grid else None
    return None if errors else Placement(branch, community, grid)


def _members_by_phone_hash(hashes: set[str]) -> dict[str, Member]:
    found = {}
    for chunk in _chunks(hashes):
        found.update((m.phone_hash, m) for m in db.session.scalars(sa.select(Member).where(
            Member.phone_hash.in_(chunk))))
    return found


def _moves(member: Member | None, placement: Placement) -> bool:
    """Whether the row puts a member on the roster in another branch, community or grid."""
    grid_id = placement.grid.id if placement.grid else None
    return member is not None and (member.branch_id, member.community_id, member.grid_id) != (
        placement.branch.id, placement.community.id, grid_id)


def _member_step(row: MemberRow, member: Member | None, placement: Placement, phone_hash: str) -> Step:
    where = (placement.branch, placement.community, placement.grid)
    if member is None:
        return Step(row.row, CREATED, lambda: enroll_member(row.name, phone_hash, mask_phone(row.phone), *where))
    if not _moves(member, placement) and member.name == row.name:
        return Step(row.row, UNCHANGED)

    def update() -> None:
        member.name = row.name
        transfer_member(member, *where)  # closes the old affiliation: history keeps where points were earned

    return Step(row.row, UPDATED, update, member.id)
