"""opentse.ops: running TSEs (sites, lifetime warnings, moving, replacement, archive,
the protocol, the procedure documentation and metrics).

Vendors' TSE guides spend most pages on operating a TSE rather than signing with it;
these modules turn their steps into code over the engine (``TSEService``) and the
operations tables of migration ``0003_ops.sql``.
"""
