"""Thin command bodies: resolve settings, call one domain function, render the result."""
