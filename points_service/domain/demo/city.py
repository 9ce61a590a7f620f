"""The demo city: a reproducible Jining-like territory, organizations, members and demo accounts.

Seeding runs as a list of steps (``SEED_STEPS``) that share one ``random.Random(seed)``: the same seed
gives the same city, and a later feature appends its own step (activities, ledger entries) without
changing what earlier steps draw. Passwords are the one thing that is *not* reproducible: they come
from ``secrets`` on every run, so no usable credential ever exists in the source tree.
"""

from __future__ import annotations

import random
import secrets
import string
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.accounts.users import add_user
from points_service.domain.audit import audit
from points_service.domain.demo.history import seed_history
from points_service.domain.demo.market import seed_market
from points_service.domain.demo.names import (
    CITY,
    CITY_UNITS,
    DISTRICT_BUREAUS,
    DISTRICTS,
    DOT_NAME_PARTS,
    GIVEN_EITHER,
    GIVEN_FEMALE,
    GIVEN_MALE,
    MOBILE_PREFIXES,
    ORDINALS,
    RARE_GIVEN_CHARS,
    SURNAMES,
)
from points_service.domain.errors import Conflict, Forbidden
from points_service.domain.phones import hash_phone, mask_phone, normalize_phone
from points_service.domain.structure import add_organization, add_region, enroll_member
from points_service.models import (
    ROLE_SCOPE,
    Member,
    Organization,
    OrgKind,
    Region,
    RegionLevel,
    Role,
    User,
    WechatIdentity,
)

DEFAULT_SEED = 2026
# Fixed, so that a reseeded city also has the same history; early enough for back-dated demo activity. Members
# are enrolled and departments paired from it.
ENROLLED_SINCE = datetime(2025, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
URBAN_STREETS = 3  # communities go to the first (urban) streets of a district, as real ones cluster there
SHARE_WITH_GRID = 0.9
SHARE_DOT_NAMES = 0.004
SHARE_RARE_CHARS = 0.004
SHARE_SINGLE_GIVEN = 0.15
MAX_COMMUNITIES = sum(len(stems) for *_, stems in DISTRICTS)
MAX_DEPARTMENTS = len(CITY_UNITS) + len(DISTRICTS) * len(DISTRICT_BUREAUS)
WECHAT_OPENID = "demo-member-{}"


class DemoRefused(Forbidden):
    code, message = "demo_refused_in_production", "生产环境禁止写入演示数据"


class DemoNotEmpty(Conflict):
    code, message = "demo_database_not_empty", "数据库中已有区划数据，演示数据只能写入空库"


@dataclass(frozen=True)
class DemoSize:
    communities: int = 40
    departments: int = 60
    members: int = 3000
    wechat_members: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.communities <= MAX_COMMUNITIES:
            raise ValueError(f"communities must be between 1 and {MAX_COMMUNITIES}")
        if not 1 <= self.departments <= MAX_DEPARTMENTS:
            raise ValueError(f"departments must be between 1 and {MAX_DEPARTMENTS}")
        if not 1 <= self.wechat_members <= self.members:
            raise ValueError("need at least one member per WeChat demo identity")


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    scope_name: str
    password: str


@dataclass
class DemoCity:
    """What the steps have built so far; each step reads what earlier ones left here."""

    seed: int
    size: DemoSize
    phone_key: str
    rng: random.Random
    communities: list[Region] = field(default_factory=list)
    grids: dict[int, list[Region]] = field(default_factory=dict)  # by community id
    departments: list[Organization] = field(default_factory=list)
    branches: list[Organization] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    phones: dict[int, str] = field(default_factory=dict)  # member id -> generated (fake) number
    accounts: list[DemoAccount] = field(default_factory=list)
    wechat_members: list[Member] = field(default_factory=list)
    region_count: int = 0


# --- people -------------------------------------------------------------------------------------------

_SURNAMES, _SURNAME_WEIGHTS = zip(*SURNAMES, strict=True)


def person_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < SHARE_DOT_NAMES:
        firsts, seconds = rng.choice(DOT_NAME_PARTS)
        return f"{rng.choice(firsts)}·{rng.choice(seconds)}"
    surname = rng.choices(_SURNAMES, weights=_SURNAME_WEIGHTS)[0]
    pool = (GIVEN_MALE if rng.random() < 0.5 else GIVEN_FEMALE) + GIVEN_EITHER
    given = "".join(rng.choice(pool) for _ in range(1 if rng.random() < SHARE_SINGLE_GIVEN else 2))
    if roll > 1 - SHARE_RARE_CHARS:
        given = given[:-1] + rng.choice(RARE_GIVEN_CHARS)
    return surname + given


def mobile_number(rng: random.Random, taken: set[str]) -> str:
    """A valid, not yet used mainland mobile number (fake: nobody is ever called on it)."""
    while True:
        number = normalize_phone(rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}")
        if number not in taken:
            taken.add(number)
            return number


def demo_password() -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(16))
        if any(c.isdigit() for c in password) and any(c.isalpha() for c in password):
            return password


# --- steps ----------------------------------------------------------------------------------------------

def seed_territory(city: DemoCity) -> None:
    """City > all districts > the streets that get communities > communities > 2–5 grids each.
    Communities are dealt to districts in turn, so even a small demo spans several districts."""
    root = add_region(CITY[0], CITY[1], RegionLevel.CITY)
    districts = [add_region(code, name, RegionLevel.DISTRICT, root) for code, name, *_ in DISTRICTS]
    stems = [city.rng.sample(pool, len(pool)) for *_, pool in DISTRICTS]
    streets: dict[str, Region] = {}
    for index in range(city.size.communities):
        d = index % len(DISTRICTS)
        if not stems[d]:
            d = next(i for i, left in enumerate(stems) if left)
        street_names = DISTRICTS[d][2]
        s = city.rng.randrange(min(URBAN_STREETS, len(street_names)))
        code = f"{districts[d].code}{s + 1:03d}"
        if code not in streets:
            streets[code] = add_region(code, street_names[s], RegionLevel.STREET, districts[d])
        _add_community(city, streets[code], stems[d].pop())
    city.region_count = 1 + len(districts) + len(streets) + len(city.communities) + sum(map(len, city.grids.values()))


def _add_community(city: DemoCity, street: Region, stem: str) -> None:
    sequence = 1 + sum(c.parent_id == street.id for c in city.communities)
    community = add_region(f"{street.code}{sequence:03d}", f"{stem}社区", RegionLevel.COMMUNITY, street)
    city.communities.append(community)
    city.grids[community.id] = [
        add_region(f"{community.code}{n:02d}", f"{stem}{ORDINALS[n - 1]}网格", RegionLevel.GRID, community)
        for n in range(1, city.rng.randint(2, 5) + 1)
    ]


def seed_organizations(city: DemoCity) -> None:
    """Department Party committees (city bureaus and district bureaus), each with 2–4 branches and
    paired with a community — in its own district when it is a district bureau and one exists there."""
    by_district: dict[str, list[Region]] = defaultdict(list)
    for community in city.communities:
        by_district[community.code[:6]].append(community)
    candidates = [(unit, None) for unit in CITY_UNITS] + [
        (f"{name}{bureau}", code) for code, name, *_ in DISTRICTS for bureau in DISTRICT_BUREAUS
    ]
    chosen = sorted(city.rng.sample(range(len(candidates)), city.size.departments))
    for number, index in enumerate(chosen, start=1):
        unit, district_code = candidates[index]
        paired = city.rng.choice(by_district.get(district_code) or city.communities)
        code = f"JN-D{number:03d}"
        department = add_organization(code, f"{unit}党委", OrgKind.DEPARTMENT, paired_community=paired,
                                      since=ENROLLED_SINCE)  # paired for all the back-dated history
        city.departments.append(department)
        city.branches.extend(
            add_organization(f"{code}-{n:02d}", f"{unit}第{ORDINALS[n - 1]}党支部", OrgKind.BRANCH, department)
            for n in range(1, city.rng.randint(2, 4) + 1)
        )


def seed_members(city: DemoCity) -> None:
    taken: set[str] = set()
    for _ in range(city.size.members):
        community = city.rng.choice(city.communities)
        grids = city.grids[community.id]
        grid = city.rng.choice(grids) if city.rng.random() < SHARE_WITH_GRID else None
        branch = city.rng.choice(city.branches)
        name, phone = person_name(city.rng), mobile_number(city.rng, taken)
        member = enroll_member(name, hash_phone(phone, city.phone_key), mask_phone(phone), branch, community,
                               grid, since=ENROLLED_SINCE)
        city.members.append(member)
        city.phones[member.id] = phone


def seed_accounts(city: DemoCity) -> None:
    """WeChat identities for a few members, and one console user per role, all scoped around
    demo-member-1 so that every demo login sees that member."""
    city.wechat_members = city.rng.sample(city.members, city.size.wechat_members)
    for number, member in enumerate(city.wechat_members, start=1):
        _bind_openid(WECHAT_OPENID.format(number), member)
    first = city.wechat_members[0]
    department = db.session.get(Organization, first.branch.department_id)
    plan = [
        ("demo-admin", Role.ADMIN, None, "全市"),
        ("demo-secretary", Role.BRANCH_SECRETARY, first.branch.id, first.branch.name),
        ("demo-community", Role.COMMUNITY_ADMIN, first.community.id, first.community.name),
        ("demo-hr", Role.HR, department.id, department.name),
        ("demo-orgadmin", Role.ORG_ADMIN, department.id, department.name),
    ]
    for username, role, scope_id, scope_name in plan:
        password = demo_password()
        add_user(username, password, [(role, ROLE_SCOPE[role], scope_id)], display_name=f"演示{scope_name}")
        city.accounts.append(DemoAccount(username, role, scope_name, password))
    db.session.flush()


def _bind_openid(openid: str, member: Member) -> None:
    # Trying dev:demo-member-1 before seeding leaves an unbound identity (no member exists yet): reuse it.
    identity = db.session.scalar(sa.select(WechatIdentity).where(WechatIdentity.openid == openid))
    if identity is None:
        identity = WechatIdentity(openid=openid)
        db.session.add(identity)
    identity.user = User(member_id=member.id, display_name=member.name)


SEED_STEPS: list[Callable[[DemoCity], None]] = [
    seed_territory, seed_organizations, seed_members, seed_accounts, seed_history, seed_market,
]


# --- the use case ----------------------------------------------------------------------------------------

def has_structure() -> bool:
    return db.session.scalar(sa.select(Region.id).limit(1)) is not None


def seed_demo(*, env_name: str, phone_key: str, seed: int = DEFAULT_SEED, size: DemoSize | None = None,
              only_if_empty: bool = False) -> DemoCity | None:
    """Build the demo city in an empty database. Returns None when ``only_if_empty`` and data exists."""
    if env_name == "production":
        raise DemoRefused()
    if has_structure():
        if only_if_empty:
            return None
        raise DemoNotEmpty()
    city = DemoCity(seed=seed, size=size or DemoSize(), phone_key=phone_key, rng=random.Random(seed))
    for step in SEED_STEPS:
        step(city)
    audit("demo.seed", detail={"seed": seed, "regions": city.region_count, "organizations":
                               len(city.departments) + len(city.branches), "members": len(city.members)})
    db.session.commit()
    return city


def accounts_document(city: DemoCity) -> dict:
    """What an operator needs to try the demo: console accounts, WeChat openids, a member to bind."""
    unbound = next(m for m in city.members if m not in city.wechat_members)
    return {
        "seed": city.seed,
        "accounts": [{"username": a.username, "role": a.role.value, "scope": a.scope_name, "password": a.password}
                     for a in city.accounts],
        "wechat_members": [
            {"openid": WECHAT_OPENID.format(n), "name": m.name, "branch": m.branch.name, "community": m.community.name}
            for n, m in enumerate(city.wechat_members, start=1)
        ],
        # Fake numbers: binding needs name + phone, and only the seeder ever knew a phone in clear.
        "binding_example": {"name": unbound.name, "phone": city.phones[unbound.id]},
    }
