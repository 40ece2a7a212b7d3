//! The `local` template (being written).

use super::{TemplateContext, TemplateOutput};

pub fn create(_ctx: &TemplateContext<'_>) -> anyhow::Result<TemplateOutput> {
    anyhow::bail!("the local template is not available yet")
}
