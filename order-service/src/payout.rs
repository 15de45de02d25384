//! How a delivered order's money is shared between its sellers, as a pure function.

use std::collections::BTreeMap;

use uuid::Uuid;

/// Splits `total` (what the buyer paid, after any voucher) between the sellers of `items`
/// (`(seller, item subtotal)`), in proportion to their subtotals, so a voucher's discount is
/// shared pro rata. Shares are whole minor units that add up to `total` exactly: each seller
/// gets the floor of their exact share, and the units left over (fewer than the sellers) go
/// one each to the largest remainders, ties to the lower seller id, so the split is the same
/// every time. Sellers whose share is 0 are left out. Ordered by seller id.
pub fn split(total: i64, items: &[(Uuid, i64)]) -> Vec<(Uuid, i64)> {
    let mut subtotals: BTreeMap<Uuid, i128> = BTreeMap::new();
    for &(seller, subtotal) in items {
        *subtotals.entry(seller).or_default() += i128::from(subtotal.max(0));
    }
    let sum: i128 = subtotals.values().sum();
    let total = i128::from(total.max(0));
    if sum == 0 || total == 0 {
        return Vec::new();
    }
    // i128: total and sum are at most 10^9 each here, so the products cannot overflow.
    let mut shares: Vec<(Uuid, i128, i128)> = subtotals
        .iter()
        .map(|(&seller, &subtotal)| (seller, total * subtotal / sum, total * subtotal % sum))
        .collect();
    let given: i128 = shares.iter().map(|(_, share, _)| share).sum();
    let mut left = total - given;
    let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
    by_remainder.sort_by(|&a, &b| {
        shares[b]
            .2
            .cmp(&shares[a].2)
            .then(shares[a].0.cmp(&shares[b].0))
    });
    for index in by_remainder {
        if left == 0 {
            break;
        }
        shares[index].1 += 1;
        left -= 1;
    }
    shares
        .into_iter()
        .filter(|(_, share, _)| *share > 0)
        .map(|(seller, share, _)| (seller, i64::try_from(share).unwrap_or(i64::MAX)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seller(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn without_a_discount_each_seller_gets_their_subtotal() {
        let items = [(seller(2), 700), (seller(1), 300), (seller(2), 100)];
        assert_eq!(split(1_100, &items), [(seller(1), 300), (seller(2), 800)]);
    }

    #[test]
    fn a_discount_is_shared_pro_rata_and_the_shares_add_up_exactly() {
        // 500 off 1,500: two thirds each; 666.67 and 333.33 become 667 and 333.
        let items = [(seller(1), 1_000), (seller(2), 500)];
        assert_eq!(split(1_000, &items), [(seller(1), 667), (seller(2), 333)]);
        // Three equal sellers and a total that does not divide: the ties go to the lower ids.
        let three = [(seller(3), 100), (seller(1), 100), (seller(2), 100)];
        assert_eq!(
            split(100, &three),
            [(seller(1), 34), (seller(2), 33), (seller(3), 33)]
        );
    }

    #[test]
    fn nothing_is_paid_out_of_nothing_and_zero_shares_are_left_out() {
        assert_eq!(split(0, &[(seller(1), 300)]), []);
        assert_eq!(split(100, &[]), []);
        // 1 unit for a seller of 1 cent among 1,000,000 cents: their share rounds to 0.
        let items = [(seller(1), 999_999), (seller(2), 1)];
        assert_eq!(split(1, &items), [(seller(1), 1)]);
    }

    /// Property-like: for many pseudo-random orders, the shares add up to the total, each is
    /// within one unit of the exact share, and none is negative.
    #[test]
    fn shares_always_add_up_and_stay_within_a_unit_of_the_exact_share() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: u64| {
            // xorshift64: deterministic, so a failure reproduces.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..10_000 {
            let sellers = 1 + next(6);
            let lines = 1 + next(10);
            let items: Vec<(Uuid, i64)> = (0..lines)
                .map(|_| {
                    let subtotal = i64::try_from(1 + next(100_000_000)).unwrap();
                    (seller(u128::from(next(sellers))), subtotal)
                })
                .collect();
            let subtotal: i64 = items.iter().map(|(_, amount)| amount).sum();
            let discount = i64::try_from(next(u64::try_from(subtotal).unwrap() + 1)).unwrap();
            let total = subtotal - discount;
            let shares = split(total, &items);
            assert_eq!(shares.iter().map(|(_, share)| share).sum::<i64>(), total);
            for (who, share) in &shares {
                let own: i64 = items
                    .iter()
                    .filter(|(s, _)| s == who)
                    .map(|(_, amount)| amount)
                    .sum();
                let exact = i128::from(total) * i128::from(own);
                let floor = exact / i128::from(subtotal);
                assert!(*share > 0);
                assert!(
                    i128::from(*share) == floor || i128::from(*share) == floor + 1,
                    "{who}: {share} for exact {exact}/{subtotal}"
                );
            }
        }
    }
}
