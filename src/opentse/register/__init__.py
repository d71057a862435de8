"""opentse.register"""
