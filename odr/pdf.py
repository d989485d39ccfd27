"""PDF rendering with WeasyPrint, for our own templates only.

WeasyPrint would fetch any file:// or network URL a document names. Ours may
name only the fonts shipped in odr/static/odr/fonts (DejaVu Sans: Kazakh
ә ғ қ ң ө ұ ү һ і, Russian and Latin), as `odr-font:<file>`; every other URL
is refused. The fonts are embedded (subset) in every PDF, so a file looks the
same on any machine and does not depend on the fonts installed here."""

from pathlib import Path

from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

FONT_DIR = Path(__file__).resolve().parent / "static" / "odr" / "fonts"
FONT_SCHEME = "odr-font:"

# Put at the top of a PDF template's <style>; then `font-family: "ODR Sans"`.
FONT_FACES = "\n".join(
    f'@font-face {{ font-family: "ODR Sans"; font-weight: {weight}; src: url("{FONT_SCHEME}{name}"); }}'
    for weight, name in (("normal", "DejaVuSans.ttf"), ("bold", "DejaVuSans-Bold.ttf"))
)


class OwnFontsOnly(URLFetcher):
    def __init__(self):
        super().__init__(allowed_protocols=(), fail_on_errors=False)

    def fetch(self, url, headers=None):
        if url.startswith(FONT_SCHEME):
            path = (FONT_DIR / url.removeprefix(FONT_SCHEME)).resolve()
            if path.parent == FONT_DIR and path.suffix == ".ttf" and path.is_file():
                return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": "font/ttf"})
        raise ValueError(f"PDF rendering fetches nothing but our own fonts ({url!r}).")


def render_document(html: str):
    """The laid-out document (pages, and each page's `anchors`: the boxes of
    elements with an id), to be written with `.write_pdf()`."""
    return HTML(string=html, url_fetcher=OwnFontsOnly()).render()


def render_pdf(html: str) -> bytes:
    return HTML(string=html, url_fetcher=OwnFontsOnly()).write_pdf()
