"""Binance USDⓈ-M perpetual futures through ccxt: settings, the venue's JSON parsing (which
never leaves this package), error translation, capabilities and market data."""
