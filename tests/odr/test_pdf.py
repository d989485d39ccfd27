"""PDF rendering: our fonts embedded, Kazakh and Russian text extractable,
and no other URL fetched."""

import http.server
import io
import threading

import pypdf
import pytest

from odr.pdf import FONT_FACES, render_pdf

KAZAKH = "Тараптар келісімге келді: әғқңөұүһі ӘҒҚҢӨҰҮҺІ"
RUSSIAN = "Стороны пришли к соглашению: ёжик в тумане"


def _html(body: str) -> str:
    return f'<html><head><style>{FONT_FACES} body {{ font-family: "ODR Sans"; }}</style></head><body>{body}</body></html>'


def _embedded_fonts(pdf: bytes) -> set[str]:
    fonts = set()
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor") or font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            descriptor = descriptor.get_object()
            if any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")):
                fonts.add(str(font["/BaseFont"]))
    return fonts


def test_when_kazakh_and_russian_are_rendered_then_the_text_is_extractable_and_our_font_is_embedded():
    pdf = render_pdf(_html(f"<p>{KAZAKH}</p><p><b>{RUSSIAN}</b></p>"))

    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert KAZAKH in text and RUSSIAN in text
    fonts = _embedded_fonts(pdf)
    # Our @font-face family (the shipped DejaVu files), subset and embedded;
    # a system font would appear under its own name.
    assert any(name.endswith("+ODR-Sans") for name in fonts), fonts
    assert any(name.endswith("+ODR-Sans-Bold") for name in fonts), fonts


@pytest.fixture
def spy_server():
    """A local HTTP server that records every request made to it."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()


def test_when_a_document_names_other_urls_then_none_is_fetched(spy_server, tmp_path):
    base, hits = spy_server
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    html = _html(
        f'<img src="{base}/tracker.png"><link rel="stylesheet" href="file://{secret}">'
        f'<style>@import url("{base}/import.css"); p {{ background: url("{base}/bg.png"); }}</style>'
        f'<p>{RUSSIAN}</p>'
    )

    pdf = render_pdf(html)

    assert pdf.startswith(b"%PDF-")
    assert hits == []


def test_when_a_font_url_tries_to_leave_the_font_folder_then_it_is_refused():
    from odr.pdf import OwnFontsOnly

    with pytest.raises(ValueError):
        OwnFontsOnly().fetch("odr-font:../../settings.py")
    with pytest.raises(ValueError):
        OwnFontsOnly().fetch("file:///etc/passwd")
