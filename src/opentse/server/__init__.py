"""opentse.server"""
