"""A small public registry for the page tests: a university's published offer on a patent
with a Chinese title, and an SME with a licensee user who may take it up."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from registry.accounts.models import Organisation, User
from registry.offers.models import Offer
from tests.factories import Factory
from tests.factories import offers as offer_factories

TITLE = "一种锂离子电池负极材料及其制备方法"
TITLE_EN = "Anode material for lithium-ion batteries and its preparation"


@dataclass
class Scene:
    university: Organisation
    tto: User
    offer: Offer
    enterprise: Organisation
    sme: User


@pytest.fixture
def scene(factory: Factory) -> Scene:
    university = factory.organisation(
        "university", name="华东理工大学", name_en="East China University of Technology"
    )
    tto = factory.user(university, "tto")
    patent = offer_factories.eligible_patent(factory, tto, title=TITLE, title_en=TITLE_EN)
    offer = offer_factories.published(factory, tto, patent)
    enterprise = factory.organisation("enterprise", name="星火电池科技有限公司")
    sme = factory.user(enterprise, "licensee", email="buyer@xinghuo.example.cn")
    factory.session.flush()
    return Scene(university, tto, offer, enterprise, sme)
