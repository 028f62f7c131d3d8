"""The report as a reader sees it: rendered in headless Chromium (skipped where there is none).

Takes a few seconds (one browser start per test); Debian's `chromium` package provides it.
"""

import pytest

from lrcn_tf.report import write_report
from lrcn_tf.report.browser import check_page, find_chromium

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium on PATH (apt-get install chromium, or set $CHROMIUM): page not rendered",
)

HEADER = "table,row,setting,metric,dataset,value,run_id,preset\n"


def test_report_renders_with_every_image_decoded_and_no_console_error(tmp_path):
    csv = tmp_path / "table5.csv"
    csv.write_text(
        HEADER
        + "table5,lstm_dec_crf_max,test,bleu4,synthetic_tacos,20.0,r1,smoke\n"
        + "table5,lstm_dec_crf_prob,test,bleu4,synthetic_tacos,25.0,r2,smoke\n"
        + "table5,lstm_enc_dec_crf_max,test,bleu4,synthetic_tacos,18.0,r3,smoke\n"
    )
    page, _ = write_report(
        [csv],
        "results/expected.csv",
        html_path=tmp_path / "index.html",
        markdown_path=tmp_path / "REPORT.md",
        workdir=tmp_path / "runs",
    )
    shot = tmp_path / "shot.png"
    result = check_page(page, screenshot=shot)
    assert result.ok, result
    assert result.images >= 1 and result.height > 800
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_the_check_finds_a_broken_image_a_console_error_and_a_network_request(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img alt="broken" src="data:image/png;base64,AAAA">'
        '<img alt="remote" src="http://example.invalid/x.png">'
        '<script>console.error("boom")</script></body></html>'
    )
    result = check_page(page)
    assert not result.ok
    assert result.broken_images == ["broken", "remote"]
    assert "boom" in result.console_errors
    assert result.requests == ["http://example.invalid/x.png"]
