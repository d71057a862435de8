"""opentse.verify"""
