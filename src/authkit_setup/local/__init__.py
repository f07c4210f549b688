"""`authkit-setup local`: PostgreSQL and Redis on this machine, and its embedded servers."""
