"""yomo.zipper"""
