"""The upload page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

import os
import shutil

import pytest

from .support import images

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# This machine has no network: without these flags Chromium keeps trying to reach Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(web_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1000, "height": 760})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()
        browser.close()


def test_upload_on_the_page_shows_state_thumbnail_and_zip(page, web_server, celery_worker_process, tmp_path):
    photo = tmp_path / "Sunset at the lake.jpg"
    photo.write_bytes(images.photo_like_jpeg((1600, 1200)))
    other = tmp_path / "logo.png"
    other.write_bytes(images.png_bytes((400, 200)))

    page.goto(web_server.url + "/")
    page.set_input_files("input[name=image_file]", [str(photo), str(other)])
    page.click("button[type=submit]")

    jobs = page.locator("li.job")
    jobs.first.wait_for()
    assert jobs.count() == 2
    # Each job says its state in words, and the words change to "Done" without a reload.
    page.wait_for_function(
        "() => [...document.querySelectorAll('li.job .job-state')].every(e => e.textContent.trim() === 'Done')"
    )
    thumbnails = page.locator("li.job img")
    assert thumbnails.count() == 2
    sources = thumbnails.evaluate_all("images => images.map(i => i.getAttribute('src'))")
    assert sorted(source.rsplit("/", 1)[1] for source in sources) == [
        "Sunset_at_the_lake_128x128.jpg",
        "logo_128x128.png",
    ]
    # The script inserts the <img> elements when the job is done; the browser then fetches them.
    page.wait_for_function(
        "() => [...document.querySelectorAll('li.job img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    zip_links = page.locator('a[href$=".zip"]')
    assert zip_links.count() == 2
    assert page.locator('a[href$="/Sunset_at_the_lake.zip"]').is_visible()

    if os.environ.get("THUMBNAILER_SCREENSHOT"):
        page.goto(web_server.url + "/")
        page.locator("li.job img").first.wait_for()
        page.screenshot(path=os.environ["THUMBNAILER_SCREENSHOT"], full_page=True)


def test_bad_file_on_the_page_gets_a_message(page, web_server, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are my notes, not a photo")

    page.goto(web_server.url + "/")
    page.set_input_files("input[name=image_file]", str(fake))
    page.click("button[type=submit]")

    message = page.locator(".messages .message").first
    assert message.inner_text().startswith("notes.jpg: The file is not an image we can read.")
    assert page.locator("li.job").count() == 0


def test_the_visitor_deletes_a_job_from_its_card(page, web_server, celery_worker_process, tmp_path):
    photo = tmp_path / "to delete.jpg"
    photo.write_bytes(images.jpeg_bytes((800, 600), color=(30, 60, 200)))
    page.goto(web_server.url + "/")
    page.set_input_files("input[name=image_file]", str(photo))
    page.click("button[type=submit]")
    page.locator("li.job").first.wait_for()
    status_url = page.locator("li.job").first.get_attribute("data-status-url")

    page.goto(web_server.url + "/")
    page.get_by_role("button", name="Delete to delete.jpg and its thumbnails").click()

    page.locator("li.job").first.wait_for(state="detached")
    assert page.locator("#jobs-announcer").inner_text() == "to delete.jpg was deleted."
    answer = page.request.get(web_server.url + status_url)
    assert (answer.status, answer.json()["error"]["code"]) == (410, "job_deleted")
    page.reload()
    assert page.locator("li.job").count() == 0
