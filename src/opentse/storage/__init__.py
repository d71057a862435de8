"""opentse.storage"""
