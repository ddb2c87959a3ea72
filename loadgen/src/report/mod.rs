//! Reports: terminal tables, `steps.csv` and the self-contained `report.html`, all rendered from
//! one [`crate::result::CampaignResult`].
