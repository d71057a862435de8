"""Fuzz harnesses for the readers that take untrusted bytes (issue 10).

Each harness module defines ``TestOneInput(data)`` (the atheris/libFuzzer entry
point), ``seeds()`` and ``main()``; ``fuzz/driver.py`` runs the same entry point
without atheris by mutating the seeds. See docs/proof.md for the commands.
"""
