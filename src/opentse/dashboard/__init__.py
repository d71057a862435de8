"""opentse.dashboard"""
