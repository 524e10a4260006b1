"""The KYC record: its CKYC rules, its lifecycle from draft to uploaded, its history and its pages."""
