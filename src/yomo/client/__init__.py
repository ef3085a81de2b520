"""yomo.client"""
