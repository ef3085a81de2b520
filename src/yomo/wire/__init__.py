"""yomo.wire"""
