"""MEXC USDT-M perpetual futures (the contract API) through ccxt: settings, the venue's JSON
parsing (which never leaves this package), error translation, capabilities, market data and
the order-entry probe."""
