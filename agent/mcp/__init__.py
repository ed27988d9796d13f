"""deskpilot as an MCP server: the desktop, its safety policy, recordings and task files for any MCP client.

`server.serve(DeskConfig(...))` runs `deskpilot mcp`; `desk.Desk` is the display being served (one
call at a time) and `journal.Journal` its one recording; `tools` declares the tools and resources;
`find` and `delegate` hold the tools that look for text and hand work to deskpilot's own runners;
`guard` is the policy check every action passes; `recordings` reads the recordings folder for the
resources.
"""
