"""The upload page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

import base64
import os
import shutil
import zipfile

import pytest

from .support import images
from .support.processes import PROJECT_ROOT

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


def test_a_file_the_server_refuses_is_failed_on_its_card_in_its_words(page, web_server, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are my notes, not a photo")

    page.goto(web_server.url + "/")
    page.set_input_files("input[name=image_file]", str(fake))

    state = page.locator("li.job.state-failure .job-state")
    state.wait_for()
    assert state.inner_text().startswith("Failed: The file is not an image we can read.")
    assert page.locator(".job-retry").count() == 0  # the same file would be refused again


def test_the_visitor_deletes_a_job_from_its_card(page, web_server, celery_worker_process, tmp_path):
    photo = tmp_path / "to delete.jpg"
    photo.write_bytes(images.jpeg_bytes((800, 600), color=(30, 60, 200)))
    page.goto(web_server.url + "/")
    page.set_input_files("input[name=image_file]", str(photo))
    page.locator("li.job.state-success").wait_for()
    status_url = page.locator("li.job").first.get_attribute("data-status-url")

    page.goto(web_server.url + "/")
    page.get_by_role("button", name="Delete to delete.jpg and its thumbnails").click()

    page.locator("li.job").first.wait_for(state="detached")
    assert page.locator("#jobs-announcer").inner_text() == "to delete.jpg was deleted."
    answer = page.request.get(web_server.url + status_url)
    assert (answer.status, answer.json()["error"]["code"]) == (410, "job_deleted")
    page.reload()
    assert page.locator("li.job").count() == 0


def drop_files(page, files: list[tuple[str, str, bytes]], *, event: str = "drop") -> float:
    """Dispatch a real drop (or paste) event carrying files, as the browser does for a drag from the desktop.

    Returns the page's clock (performance.now(), ms) at the moment of the drop.
    """
    payload = [
        {"name": name, "type": mime, "data": base64.b64encode(data).decode()} for name, mime, data in files
    ]
    return page.evaluate(
        """([files, event]) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, {type: f.type}));
            }
            const droppedAt = performance.now();
            if (event === "paste") {
                document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true}));
            } else {
                document.body.dispatchEvent(new DragEvent("dragenter", {dataTransfer: transfer, bubbles: true}));
                document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
            }
            return droppedAt;
        }""",
        [payload, event],
    )


@pytest.mark.parametrize("event", ["drop", "paste"])
def test_dropped_or_pasted_images_upload_at_once_without_leaving_the_page(
    page, web_server, celery_worker_process, event
):
    page.goto(web_server.url + "/")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    dropped_at = drop_files(
        page, [("dropped.jpg", "image/jpeg", images.photo_like_jpeg((1600, 1200)))], event=event
    )
    shown_at = page.wait_for_function(
        """() => {
            const image = document.querySelector('li.job.state-success img');
            return image && image.complete && image.naturalWidth > 0 && performance.now();
        }""",
        polling=5,
    ).json_value()
    elapsed_ms = shown_at - dropped_at

    assert page.url == web_server.url + "/"
    assert posts == [web_server.url + "/"]
    assert page.locator("li.job.state-success .job-name").inner_text() == "dropped.jpg"
    assert page.locator('li.job.state-success a[href$=".zip"]').count() == 1
    # A benchmark figure, not an assertion: the machine is shared and noisy.
    print(f"\n{event} -> visible thumbnail of a 2 MP JPEG: {elapsed_ms:.0f} ms")


def test_files_the_server_would_refuse_are_answered_before_any_byte_is_sent(page, web_server):
    page.goto(web_server.url + "/")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    drop_files(page, [("report.pdf", "application/pdf", b"%PDF-1.4"), ("notes.txt", "text/plain", b"hello")])

    states = page.locator("li.job.state-failure .job-state")
    states.nth(1).wait_for()
    assert states.all_inner_texts() == [
        "Failed: PDF files are not supported. Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image.",
        "Failed: The file is not an image we can read. Upload a JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, AVIF or HEIC image.",
    ]
    assert posts == []


def test_three_files_give_one_download_all_zip(page, web_server, celery_worker_process):
    page.goto(web_server.url + "/")
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    drop_files(
        page, [(f"shot {n}.jpg", "image/jpeg", images.jpeg_bytes(color=c)) for n, c in enumerate(colours)]
    )
    page.wait_for_function("() => document.querySelectorAll('li.job.state-success').length === 3")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download all").click()

    archive = zipfile.ZipFile(download_info.value.path())
    assert sorted(archive.namelist()) == [
        f"shot_{n}/shot_{n}{suffix}.jpg" for n in range(3) for suffix in ("", "_128x128")
    ]


# --- Accessible and mobile --------------------------------------------------------------------

AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page) -> list[dict]:
    """axe-core's critical and serious findings (WCAG 2 A and AA rules) on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
    )
    return [
        {"rule": violation["id"], "impact": violation["impact"], "nodes": len(violation["nodes"])}
        for violation in results["violations"]
        if violation["impact"] in ("critical", "serious")
    ]


@pytest.mark.parametrize("width", [1000, 390], ids=["desktop", "mobile"])
def test_pages_have_no_serious_accessibility_problems_and_fit_a_phone(
    page, web_server, celery_worker_process, width
):
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(web_server.url + "/")
    drop_files(
        page, [("a photo.jpg", "image/jpeg", images.jpeg_bytes()), ("b.pdf", "application/pdf", b"%PDF")]
    )
    page.locator("li.job.state-success img").wait_for()
    status_url = page.locator("li.job.state-success").get_attribute("data-status-url")
    results_url = "/jobs/?ids=" + status_url.strip("/").rsplit("/", 1)[-1]

    found = {}
    for path in ["/", results_url, "/stats/"]:
        page.goto(web_server.url + path)
        found[path] = serious_violations(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{path} scrolls sideways"
    page.goto(web_server.url + "/")
    # Cards in every state the page shows: done with thumbnails, and failed with its message.
    drop_files(
        page,
        [
            ("Sunset at the lake.jpg", "image/jpeg", images.photo_like_jpeg((1600, 1200))),
            ("logo.png", "image/png", images.png_bytes((400, 200))),
            ("report.pdf", "application/pdf", b"%PDF"),
        ],
    )
    page.wait_for_function(
        "() => document.querySelectorAll('#upload-jobs li.job.state-success img').length === 2"
    )
    found["/ with cards"] = serious_violations(page)
    if os.environ.get("THUMBNAILER_SCREENSHOTS"):  # the README's pictures: make screenshots
        name = "desktop" if width > 600 else "mobile"
        page.screenshot(path=f"{os.environ['THUMBNAILER_SCREENSHOTS']}/screenshot-{name}.png", full_page=True)

    print(
        f"\naxe critical+serious at {width}px: " + ", ".join(f"{path} {len(v)}" for path, v in found.items())
    )
    assert found == {path: [] for path in found}


def test_the_drop_zone_and_controls_work_from_the_keyboard(page, web_server, celery_worker_process, tmp_path):
    photo = tmp_path / "keyboard.jpg"
    photo.write_bytes(images.jpeg_bytes(color=(90, 90, 10)))
    # Listening before the page loads makes Chromium hand file dialogs to the test from the
    # start; turning that on only around the key press raced with it (1 run in 4 saw no dialog).
    choosers = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    page.goto(web_server.url + "/")

    page.keyboard.press("Tab")  # the site's links first
    for _ in range(10):
        if page.evaluate("document.activeElement.name") == "image_file":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "image_file"
    page.keyboard.press("Space")
    for _ in range(100):  # bounded: at most about 5 s
        if choosers:
            break
        page.wait_for_timeout(50)
    choosers[0].set_files(str(photo))
    page.locator("li.job.state-success").wait_for()

    page.goto(web_server.url + "/")
    delete = page.get_by_role("button", name="Delete keyboard.jpg and its thumbnails")
    delete.focus()
    page.keyboard.press("Enter")
    page.locator("li.job").first.wait_for(state="detached")
    assert page.locator("#jobs-announcer").inner_text() == "keyboard.jpg was deleted."


def test_the_progress_bar_follows_the_bytes_of_a_slow_upload(page, web_server, celery_worker_process):
    """Under a throttled upload (Chromium's own network emulation) the bar rises in steps."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 512 * 1024},
    )
    page.goto(web_server.url + "/")
    big = images.noisy_png_bytes((700, 700))  # about 1.5 MB: about 3 s at 512 KiB/s

    drop_files(page, [("slow.png", "image/png", big)])
    seen = page.evaluate(
        """async () => {
            const seen = [];
            const started = performance.now();
            while (performance.now() - started < 15000) {
                const bar = document.querySelector('li.job progress');
                if (!bar) break;
                if (seen[seen.length - 1] !== bar.value) seen.push(bar.value);
                await new Promise(resolve => setTimeout(resolve, 50));
            }
            return seen;
        }"""
    )

    assert len(big) > 1_000_000
    steps = [value for value in seen if 0 < value < 100]
    assert len(steps) >= 3, seen
    assert steps == sorted(steps)
    page.locator("li.job.state-success").wait_for()


def test_without_javascript_the_plain_form_and_the_refreshing_results_page_work(
    web_server, celery_worker_process, tmp_path
):
    from playwright.sync_api import sync_playwright

    photo = tmp_path / "no script.jpg"
    photo.write_bytes(images.jpeg_bytes(color=(150, 20, 120)))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(web_server.url + "/")
        assert page.locator("#drop-hint").is_hidden()
        page.set_input_files("input[name=image_file]", str(photo))
        page.click("button[type=submit]")

        page.wait_for_url("**/jobs/?ids=*")
        # The page reloads itself (meta refresh) until the job is done.
        page.locator("li.job.state-success img").wait_for()
        assert page.locator('a[href$="/no_script.zip"]').count() == 1
        context.close()
        browser.close()


def test_the_shape_and_format_chosen_on_the_page_are_what_the_card_shows(
    page, web_server, celery_worker_process
):
    page.goto(web_server.url + "/")
    page.get_by_label("Fill — exactly the box, cropped at the centre").check()
    page.get_by_label("Format").select_option("webp")

    drop_files(page, [("wide.jpg", "image/jpeg", images.jpeg_bytes((1200, 400)))])
    page.locator("li.job.state-success img").wait_for()

    assert page.locator("li.job.state-success figcaption").inner_text() == "128x128 · 128×128 · fill · WEBP"
    assert page.locator("li.job.state-success img").get_attribute("src").endswith("/wide_128x128.webp")
