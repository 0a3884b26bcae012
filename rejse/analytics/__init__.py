"""Analytics: campaign KPIs with attribution, the A/B programme, the lead funnel, and charts."""
