"""Dated pairings: ``structure.pair_organization`` keeps one open pairing per organization and closes the old one
where the new one begins; the database refuses a second open pairing and an empty range."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.structure import add_organization, pair_organization, paired_communities_at
from points_service.models import Organization, OrgKind, Pairing, Region
from tests.concurrency import hammer
from tests.factories import ROSTER_LOADED, make_city, make_department, pairing_history
from tests.factories.ledger import local

MAY = local(2026, 5, 1)


@pytest.fixture
def city(app):
    city = make_city()
    db.session.commit()
    return city


def test_a_new_organization_is_paired_from_its_start_and_an_unpaired_one_has_no_pairing(city):
    paired = add_organization("D1", "市财政局党委", OrgKind.DEPARTMENT, paired_community=city["north"], since=MAY)
    unpaired = add_organization("D2", "市教育局党委", OrgKind.DEPARTMENT)
    db.session.commit()
    assert paired.paired_community_id == city["north"].id
    assert pairing_history(paired) == [(city["north"].id, MAY, None)]
    assert unpaired.paired_community_id is None and pairing_history(unpaired) == []


def test_a_re_pairing_closes_the_open_pairing_where_the_new_one_begins(city):
    department = make_department(city["north"])
    pair_organization(department, city["south"], MAY)
    db.session.commit()
    assert department.paired_community_id == city["south"].id
    assert pairing_history(department) == [(city["north"].id, ROSTER_LOADED, MAY), (city["south"].id, MAY, None)]


def test_pairing_with_the_same_community_again_changes_nothing(city):
    department = make_department(city["north"])
    pair_organization(department, city["north"], MAY)
    db.session.commit()
    assert pairing_history(department) == [(city["north"].id, ROSTER_LOADED, None)]


def test_an_unpairing_closes_the_open_pairing_and_opens_none(city):
    department = make_department(city["north"])
    pair_organization(department, None, MAY)
    db.session.commit()
    assert department.paired_community_id is None
    assert pairing_history(department) == [(city["north"].id, ROSTER_LOADED, MAY)]


def test_a_pairing_replaced_at_the_instant_it_began_was_never_in_force(city):
    department = make_department(city["north"], since=MAY)
    pair_organization(department, city["south"], MAY)
    db.session.commit()
    assert pairing_history(department) == [(city["south"].id, MAY, None)]


def test_the_pairing_in_force_covers_its_end_instant_and_not_its_start(city):
    department = make_department(city["north"])
    pair_organization(department, city["south"], MAY)
    db.session.commit()
    assert paired_communities_at(ROSTER_LOADED) == {}
    assert paired_communities_at(MAY)[department.id] == city["north"].id
    assert paired_communities_at(local(2026, 5, 2))[department.id] == city["south"].id


def test_the_database_refuses_a_second_open_pairing_of_an_organization(city):
    department = make_department(city["north"])
    db.session.commit()
    db.session.add(Pairing(organization_id=department.id, community_id=city["south"].id, valid_from=MAY))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_the_database_refuses_a_pairing_ending_before_it_begins(city):
    department = make_department(city["north"])
    db.session.commit()
    db.session.add(Pairing(organization_id=department.id, community_id=city["south"].id,
                           valid_from=MAY, valid_to=local(2026, 4, 1)))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


@pytest.mark.postgres
def test_concurrent_re_pairings_of_one_organization_take_turns_and_leave_one_open_pairing(app, city):
    department_id = make_department(city["north"]).id
    db.session.commit()
    targets = [city["south"].id, city["north"].id] * 5

    def re_pair(community_id):
        def call():
            pair_organization(db.session.get(Organization, department_id), db.session.get(Region, community_id))
            db.session.commit()
        return call

    hammer(app, [re_pair(community_id) for community_id in targets], workers=10)
    department = db.session.get(Organization, department_id)
    history = pairing_history(department)
    assert [until for _community, _since, until in history].count(None) == 1
    assert history[-1][0] == department.paired_community_id
    assert all(earlier[2] == later[1] for earlier, later in itertools.pairwise(history))  # no gap, no overlap
