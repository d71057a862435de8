"""opentse.crypto"""
