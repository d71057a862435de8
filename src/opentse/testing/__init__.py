"""opentse.testing"""
