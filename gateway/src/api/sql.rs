//! The queries the handlers share: a tenant's resource table read by id, and a `SELECT`
//! assembled at run time from optional filters, paged newest first.

use sqlx::AnyPool;
use sqlx::any::{AnyArguments, AnyRow};

use super::{
    ApiResult, ApiState, PageQuery, decode_time_cursor, encode_cursor, encode_time_cursor, page,
    parse_time,
};

/// A table of one kind of a tenant's resources, keyed by `(tenant_id, id)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TenantTable {
    pub name: &'static str,
    /// What every read selects, in the order the resource's row parser expects.
    pub columns: &'static str,
}

impl TenantTable {
    /// The tenant's row with this id, if it has one.
    pub async fn row(&self, state: &ApiState, tenant: &str, id: &str) -> ApiResult<Option<AnyRow>> {
        let TenantTable { name, columns } = self;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM {name} WHERE id = $1 AND tenant_id = $2"
        )))
        .bind(id)
        .bind(tenant)
        .fetch_optional(&state.pool)
        .await?;
        Ok(row)
    }

    /// One page of the tenant's rows in id order, each read by `parse`, and the next page's
    /// cursor (the last row's id).
    pub async fn page_by_id<T>(
        &self,
        state: &ApiState,
        tenant: &str,
        query: &PageQuery,
        parse: impl Fn(&AnyRow) -> ApiResult<T>,
        id: impl Fn(&T) -> &str,
    ) -> ApiResult<(Vec<T>, Option<String>)> {
        let (limit, after) = query.after_id()?;
        let TenantTable { name, columns } = self;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM {name} WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(tenant)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&state.pool)
        .await?;
        let rows = rows.iter().map(parse).collect::<ApiResult<Vec<_>>>()?;
        Ok(page(rows, limit, |row| encode_cursor(id(row))))
    }
}

/// A value bound to a query assembled at run time.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// A `SELECT` assembled at run time: its SQL and the values of its `$1`, `$2`, … in order.
#[derive(Debug)]
pub(crate) struct Select {
    sql: String,
    args: Vec<Arg>,
}

impl Select {
    /// `sql` whose `$1` to `$n` are `args`.
    pub fn new(sql: impl Into<String>, args: Vec<Arg>) -> Select {
        Select {
            sql: sql.into(),
            args,
        }
    }

    /// Append `condition` (` AND …`), whose `?` stands for `arg`.
    pub fn and(&mut self, condition: &str, arg: Arg) {
        self.args.push(arg);
        self.sql
            .push_str(&condition.replace('?', &format!("${}", self.args.len())));
    }

    /// Keep the rows whose `time` column is at or after the query's `since` and before its
    /// `until` (RFC 3339 times; either may be absent).
    pub fn between(
        &mut self,
        time: &str,
        since: Option<&str>,
        until: Option<&str>,
    ) -> ApiResult<()> {
        if let Some(since) = since {
            let since = parse_time("since", since)?;
            self.and(&format!(" AND {time} >= ?"), Arg::Int(since));
        }
        if let Some(until) = until {
            let until = parse_time("until", until)?;
            self.and(&format!(" AND {time} < ?"), Arg::Int(until));
        }
        Ok(())
    }

    /// Order newest first by the columns `time` and `id`, start after `cursor` (a
    /// [`encode_time_cursor`] one) and fetch `limit + 1` rows, for [`page_by_time`].
    pub fn newest_first(
        &mut self,
        time: &str,
        id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> ApiResult<()> {
        if let Some(cursor) = cursor {
            let (at, after) = decode_time_cursor(cursor)?;
            self.args.push(Arg::Int(at));
            let at_n = self.args.len();
            self.args.push(Arg::Text(after));
            let id_n = self.args.len();
            self.sql.push_str(&format!(
                " AND ({time} < ${at_n} OR ({time} = ${at_n} AND {id} < ${id_n}))"
            ));
        }
        self.args.push(Arg::Int(limit + 1));
        self.sql.push_str(&format!(
            " ORDER BY {time} DESC, {id} DESC LIMIT ${}",
            self.args.len()
        ));
        Ok(())
    }

    pub async fn fetch_all(self, pool: &AnyPool) -> Result<Vec<AnyRow>, sqlx::Error> {
        let mut query: sqlx::query::Query<'_, sqlx::Any, AnyArguments> =
            sqlx::query(sqlx::AssertSqlSafe(self.sql));
        for arg in self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(n) => query.bind(n),
            };
        }
        query.fetch_all(pool).await
    }
}

/// Cut `(time, item)` rows fetched in time order to a page, and the next page's cursor (the
/// last item's time and `id`).
pub(crate) fn page_by_time<T>(
    rows: Vec<(i64, T)>,
    limit: i64,
    id: impl Fn(&T) -> &str,
) -> (Vec<T>, Option<String>) {
    let (rows, next_cursor) = page(rows, limit, |(at, item)| encode_time_cursor(*at, id(item)));
    (
        rows.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    )
}
