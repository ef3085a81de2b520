"""yomo.transport"""
