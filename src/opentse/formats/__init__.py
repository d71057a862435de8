"""opentse.formats"""
