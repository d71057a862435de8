"""opentse.engine"""
