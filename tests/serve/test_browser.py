"""The page at / in headless Chromium: choosing an image through the page's own input shows the top-5."""

import base64
import os

import pytest
from cdp_pipe import Browser, find_chromium
from serve_helpers import jpeg_bytes

from squeezelab.serve.loadtest import spawn_server

CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does it)")
def test_uploading_an_image_on_the_page_shows_five_predictions_with_bars(onnx_file, tmp_path):
    image = tmp_path / "photo of a cat.jpg"
    image.write_bytes(jpeg_bytes(size=(320, 240), seed=7))
    with spawn_server(onnx_file) as (url, _):
        browser = Browser(CHROMIUM, str(tmp_path / "profile"))
        try:
            session = browser.open_page()
            browser.send("Page.enable", session=session)
            browser.send("Page.navigate", {"url": f"{url}/"}, session)
            browser.wait_for(session, "document.readyState === 'complete' && !!document.querySelector('#file')")
            browser.wait_for(session, "document.querySelector('#model').textContent.includes('classes')")
            root = browser.send("DOM.getDocument", session=session)["root"]["nodeId"]
            node = browser.send("DOM.querySelector", {"nodeId": root, "selector": "#file"}, session)["nodeId"]
            browser.send("DOM.setFileInputFiles", {"files": [str(image)], "nodeId": node}, session)
            browser.wait_for(session, "document.querySelectorAll('.prediction').length === 5")
            rows = browser.evaluate(session, """[...document.querySelectorAll('.prediction')].map(r => ({
                label: r.querySelector('.label').textContent, pct: r.querySelector('.pct').textContent,
                bar: r.querySelector('.bar').getBoundingClientRect().width}))""")
            error = browser.evaluate(session, "document.querySelector('#error').textContent")
            shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        finally:
            browser.close()
    (tmp_path / "page.png").write_bytes(base64.b64decode(shot))
    if os.environ.get("SQUEEZELAB_SCREENSHOT"):
        (tmp_path / "page.png").replace(os.environ["SQUEEZELAB_SCREENSHOT"])
    assert error == ""
    assert len(rows) == 5 and all(r["label"] for r in rows)
    percents = [float(r["pct"].rstrip("%")) for r in rows]
    assert percents == sorted(percents, reverse=True) and 0 < sum(percents) <= 100.5
    assert all(r["bar"] > 0 for r in rows) and rows[0]["bar"] >= rows[-1]["bar"]
