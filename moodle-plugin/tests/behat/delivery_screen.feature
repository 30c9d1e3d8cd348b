@tool @tool_delivery @javascript
Feature: Deliver code from the delivery screen
  In order to deliver code to a live Moodle site safely
  As an administrator
  I need to run a whole delivery, cancel one, and roll back only once I have confirmed it

  # These scenarios drive the site's real delivery helper (deliveryd), whose socket and key the
  # test site's config.php gives in $CFG->forced_plugin_settings; each one leaves the site served
  # from production.

  Background:
    Given I log in as "admin"
    And I navigate to "Server > Code delivery" in site administration

  Scenario: Run all goes through the four steps and says the delivery is complete
    When I press "Run all"
    Then the delivery screen shows the job's result
    And I should see "The delivery is complete." in the "[data-region='tool_delivery-result']" "css_element"
    And I should see "Next: switch to delivery."
    And I should see "Next: restore production."

  Scenario: Cancel after switching to delivery serves production again
    When I press "Secure"
    And the delivery screen shows the job's result
    And I reload the page
    And I press "Switch to delivery"
    And the delivery screen shows the job's result
    And I should see "The site is in delivery mode" in the "[data-region='tool_delivery-result']" "css_element"
    And I reload the page
    And I press "Cancel"
    Then the delivery screen shows the job's result
    And I should see "The delivery is cancelled" in the "[data-region='tool_delivery-result']" "css_element"

  Scenario: The emergency rollback asks first, and starts nothing when the answer is Cancel
    When I press "Emergency rollback"
    Then I should see "Serve the" in the "Emergency rollback" "dialogue"
    And I click on "Cancel" "button" in the "Emergency rollback" "dialogue"
    And the delivery screen follows no job
    And I press "Emergency rollback"
    And I click on "Roll back now" "button" in the "Emergency rollback" "dialogue"
    And the delivery screen shows the job's result
    And I should see "The site serves the" in the "[data-region='tool_delivery-result']" "css_element"
    And I reload the page
    And I press "Cancel"
    And the delivery screen shows the job's result
    And I should see "The delivery is cancelled" in the "[data-region='tool_delivery-result']" "css_element"
