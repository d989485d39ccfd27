"""Hostile PDFs, made on the fly (nothing large is committed): what an
attacker sends to /verify/ to stall the site or crash the checker.

Each generator returns the bytes of one file. Most are built from scratch
with `assemble`, which writes objects, a cross-reference table and a
trailer, so that pyHanko reads far enough to meet the trap; the ones that
start from a genuine sealed agreement take it as an argument."""

import io
import random
import zlib


def assemble(objects: list[bytes], *, root: int = 1, trailer_extra: bytes = b"", header: bytes = b"%PDF-1.7\n") -> bytes:
    """A PDF whose object n is objects[n - 1], with a correct xref table."""
    out = bytearray(header + b"%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    startxref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, root, trailer_extra, startxref,
    )
    return bytes(out)


def _catalog(extra: bytes = b"") -> bytes:
    return b"<< /Type /Catalog /Pages 2 0 R " + extra + b">>"


def _one_page() -> list[bytes]:
    return [
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]


def minimal() -> bytes:
    """A well-formed one-page PDF without signatures (not hostile: a control)."""
    return assemble([_catalog(), *_one_page()])


def _fake_signature(field: int, value: int, *, contents: bytes = b"<3082>") -> list[bytes]:
    return [
        b"<< /FT /Sig /T (Signature%d) /V %d 0 R /Type /Annot /Subtype /Widget /Rect [0 0 0 0] >>" % (field, value),
        b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange [0 10 20 10] "
        b"/Contents " + contents + b" >>",
    ]


def signed_looking() -> bytes:
    """One page and one signature field whose signature is junk: a shape that
    makes the checker go as far as validating a signature."""
    return assemble([_catalog(b"/AcroForm << /Fields [4 0 R] >> "), *_one_page(), *_fake_signature(4, 5)])


def truncated() -> bytes:
    """The first half of a PDF with a signature field: no xref, no trailer."""
    whole = signed_looking()
    return whole[: len(whole) // 2]


def truncated_agreement(sealed: bytes) -> bytes:
    """A genuine sealed agreement, cut in half (a broken download)."""
    return sealed[: len(sealed) // 2]


def xref_loop() -> bytes:
    """The trailer's /Prev names the xref section it belongs to: reading the
    history of revisions would never end."""
    body = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, obj in enumerate([_catalog(), *_one_page()], start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    startxref = len(body)
    body += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    body += b"trailer\n<< /Size 4 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (startxref, startxref)
    return bytes(body)


def reference_loop() -> bytes:
    """The form's fields are an object that is a reference to an object that
    is a reference back."""
    return assemble([_catalog(b"/AcroForm 4 0 R "), *_one_page(), b"5 0 R", b"4 0 R"])


def page_tree_loop() -> bytes:
    """The page tree's only kid is the tree itself; the form's field is its own kid."""
    return assemble([
        _catalog(b"/AcroForm << /Fields [4 0 R] >> "),
        b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R >>",
        b"<< /T (Loop) /Kids [4 0 R] /Parent 4 0 R >>",
    ])


def deep_nesting(depth: int = 200_000) -> bytes:
    """Arrays nested 200,000 deep where the checker must read them (the form's fields)."""
    return assemble([_catalog(b"/AcroForm << /Fields " + b"[" * depth + b"]" * depth + b" >> "), *_one_page()])


def pages(count: int = 200_000) -> bytes:
    """200,000 pages, each its own object, and a form over them (≈ 9 MB)."""
    kids = b" ".join(b"%d 0 R" % (n + 4) for n in range(count))
    objects = [
        _catalog(b"/AcroForm << /Fields [3 0 R] >> "),
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count,
        b"<< /FT /Sig /T (Signature1) >>",
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R >>"] * count
    return assemble(objects)


def signature_fields(count: int = 20_000) -> bytes:
    """20,000 signature fields with junk signatures: each one is a check."""
    fields = b" ".join(b"%d 0 R" % (4 + 2 * n) for n in range(count))
    objects = [_catalog(b"/AcroForm << /Fields [" + fields + b"] >> "), *_one_page()]
    for n in range(count):
        objects += _fake_signature(4 + 2 * n, 5 + 2 * n)
    return assemble(objects)


def flate_bomb(decoded_mib: int = 200) -> bytes:
    """A cross-reference stream that inflates ~1000-fold: 200 KB on the wire,
    200 MiB of entries once inflated, and gigabytes once parsed (20 MiB
    already took 10 s of CPU and 680 MB unconfined)."""
    entry = 7  # /W [1 4 2]
    size = decoded_mib * 1024 * 1024 // entry
    compressor = zlib.compressobj(9)
    chunk = bytes(1024 * 1024)
    packed = b"".join(compressor.compress(chunk) for _ in range(decoded_mib)) + compressor.flush()
    head = b"%PDF-1.7\n"
    catalog = b"1 0 obj\n" + _catalog() + b"\nendobj\n"
    xref_at = len(head) + len(catalog)
    stream = (
        b"2 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Filter /FlateDecode /Length %d >>\nstream\n"
        % (size, len(packed)) + packed + b"\nendstream\nendobj\n"
    )
    return head + catalog + stream + b"startxref\n%d\n%%%%EOF\n" % xref_at


def incremental_updates(count: int = 100_000) -> bytes:
    """100,000 incremental updates, each rewriting the catalog (≈ 18 MB): a
    history of revisions to read that takes about 10 s of CPU and a few
    hundred MB unconfined — the shape of the attacker's 20 MB file."""
    out = bytearray(minimal())
    previous = int(out[out.rindex(b"startxref") + 10:].split()[0])
    for revision in range(count):
        at = len(out)
        out += b"1 0 obj\n" + _catalog(b"/Revision %d " % revision) + b"\nendobj\n"
        xref_at = len(out)
        out += b"xref\n0 1\n0000000000 65535 f \n1 1\n%010d 00000 n \n" % at
        out += b"trailer\n<< /Size 4 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (previous, xref_at)
        previous = xref_at
    return bytes(out)


def catalog_swapped_over(sealed: bytes) -> bytes:
    """A genuine sealed agreement with an incremental update appended that
    swaps its catalog for one of the attacker's, without the form (so
    without its signatures) and with a script to run on opening."""
    start = int(sealed[sealed.rindex(b"startxref") + 10:].split()[0])
    root = sealed[sealed.rindex(b"/Root", 0, len(sealed)) + 5:].split(b"R")[0] + b"R"
    number = int(root.split()[0])
    at = len(sealed) + 1
    update = b"\n%d 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\nendobj\n" % number
    xref_at = at + len(update) - 1
    update += b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n" % (number, at)
    update += b"trailer\n<< /Size %d /Root %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (number + 1, root, start, xref_at)
    return sealed + update


# Just under /verify/'s 20 MiB limit, so that the checker gets them.
NEAR_LIMIT = 20 * 1024 * 1024 - 4096


def page_added_to(sealed: bytes) -> bytes:
    """A genuine sealed agreement with an incremental update appended that
    writes "Paid in full" over its first page: every signature still covers
    the bytes it covered, and the file is not what was sealed."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(sealed), strict=False)
    text = generic.StreamObject(stream_data=b"BT /Helv 24 Tf 72 720 Td (Paid in full) Tj ET")
    writer.add_stream_to_page(0, writer.add_object(text))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def junk(size: int = NEAR_LIMIT, seed: int = 20260) -> bytes:
    """`size` bytes of noise between a PDF header and a trailer that points into it."""
    noise = random.Random(seed).randbytes(size)
    return b"%PDF-1.7\n" + noise + b"\ntrailer\n<< /Root 1 0 R /Size 2 >>\nstartxref\n9\n%%EOF\n"


def junk_objects(size: int = NEAR_LIMIT) -> bytes:
    """`size` bytes of plausible objects with a broken xref, so that a
    lenient reader would rebuild it by scanning the whole file."""
    obj = b"%d 0 obj\n<< /Type /Annot /Subtype /Widget /FT /Sig /V << /Contents <00> >> >>\nendobj\n"
    body = bytearray(b"%PDF-1.7\n")
    number = 1
    while len(body) < size:
        body += obj % number
        number += 1
    return bytes(body) + b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Root 1 0 R /Size %d >>\nstartxref\n%d\n%%%%EOF\n" % (number, size // 2)


# name → generator, for the files that need nothing to start from.
CORPUS = {
    "truncated": truncated,
    "xref loop": xref_loop,
    "reference loop": reference_loop,
    "page tree loop": page_tree_loop,
    "deep nesting": deep_nesting,
    "200k pages": pages,
    "20k signature fields": signature_fields,
    "flate bomb": flate_bomb,
    "100k incremental updates": incremental_updates,
    "20 MB junk": junk,
    "20 MB junk objects": junk_objects,
}


def seal_copies(sealed: bytes, count: int = 2_000) -> bytes:
    """`count` signature fields that all carry the genuine seal's signature
    (one object, so the file stays small): every one is a full validation of
    a real signature, certificate path and all."""
    start = sealed.rindex(b"/Contents <") + len(b"/Contents ")
    contents = sealed[start: sealed.index(b">", start) + 1]
    fields = b" ".join(b"%d 0 R" % (5 + n) for n in range(count))
    objects = [
        _catalog(b"/AcroForm << /Fields [" + fields + b"] /SigFlags 3 >> "), *_one_page(),
        b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange [0 100 200 100] "
        b"/Contents " + contents + b" >>",
    ]
    objects += [
        b"<< /FT /Sig /T (Seal%d) /V 4 0 R /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /P 3 0 R >>" % n
        for n in range(count)
    ]
    return assemble(objects)
