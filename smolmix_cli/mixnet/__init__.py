"""Nym's packet layer and mixnet client, one subpackage (room) per concern.

Imports point down only: packet <- topology <- message, packet <- gateway, topology <-
directory, and client on top of them all. The modules here are leaves every room shares.
"""
