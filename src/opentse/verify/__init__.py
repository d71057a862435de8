"""Verifier for TR-03151 TAR exports of any vendor and for receipt QR codes.

Entry points: ``report.verify_exports(paths, trust=..., workers=..., progress=...)``
-> ``VerifyReport`` (``.to_json()`` is the ``opentse verify --json`` object),
``html.write_html(report, path)``, ``receipt.verify_receipt(text)`` ->
``ReceiptResult``, ``qrimage.read_qr_texts(image_path)``. One module per check:
signatures, certificates, counters, transactions, times, names (file names and
info.csv); ``archive``/``tarscan``/``logcheck`` read and decode (``reading``: plain
reads, so a file that fails or shrinks while read is ``E_EXPORT_READ``, not SIGBUS),
``synthetic`` writes valid exports for tests and the benchmark.
"""
