"""What a partner-program membership is: notifications, the membership aggregate, the ledger.

Nothing in this package does I/O of its own or knows which database it runs on.
"""
