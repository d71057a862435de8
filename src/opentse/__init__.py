"""opentse: an open software TSE (BSI TR-03151), a fiskaly SIGN DE v2-compatible TSE
service and the register side of German cash-register fiscalization.

opentse is NOT a BSI-certified TSE. Where §146a AO requires a certified TSE (live
receipts in Germany), use a certified one; opentse's register side works with those.
"""

__version__ = "0.1.0"
NOT_CERTIFIED_NOTICE = (
    "opentse is not a BSI-certified TSE (§146a AO); not valid for fiscal use in Germany."
)
