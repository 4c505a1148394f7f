"""The local CA: its folder (mkcert's layout and locking), name constraints, issuing leaves, the iOS
profile, and checking a certificate the user brings. A service: imports only base.
"""
