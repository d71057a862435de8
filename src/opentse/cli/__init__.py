"""opentse.cli"""
