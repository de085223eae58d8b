"""An address that names no page: a zh/en notice on the start page, not Streamlit's English dialog."""

from __future__ import annotations

import pytest

from tests.e2e._helpers import TIMEOUT_MS, settle

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("signed_in", [True, False])
def test_unknown_address_gets_a_chinese_notice(browser, server, signed_in) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                              signed_in=signed_in)
    page = ctx.new_page()
    try:
        page.goto(f"{server}/no-such-page")
        page.wait_for_selector("[data-testid='stAlertContentWarning']", timeout=TIMEOUT_MS)
        settle(page)
        warning = page.locator("[data-testid='stAlertContentWarning']").first.inner_text()
        assert "没有 /no-such-page 这个页面" in warning
        assert page.get_by_text("Page not found").count() == 0
        assert page.locator("[role='dialog']").count() == 0
        if signed_in:  # the start page ran: the explorer's map
            page.wait_for_selector("iframe[title='streamlit_folium.st_folium']", timeout=TIMEOUT_MS)
        else:
            assert page.locator("input[type='password']").count() == 1
    finally:
        ctx.close()
